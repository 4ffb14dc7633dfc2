"""compile = true: one graph per sequence length, never recompiled, the same numbers as eager."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.utils import counters

from tests.train.helpers import NO_DROPOUT, deterministic, train_here

# one layer each (compiling takes seconds per layer here); aot_eager traces forward and backward
# as inductor does but generates no code
SMALL = ("model.num_hidden_layers=1", "steps=3", "log_interval=1", "checkpoint_interval=3")
COMPILED = ("compile=true", "compile_backend=aot_eager")


@pytest.mark.parametrize(
    "mode,sharing",
    [
        ("joint", "gdes"),
        ("joint", "es"),
        ("joint", "nes"),
        ("decoupled", "gdes"),
        ("decoupled", "nes"),
    ],
)
def test_compiled_step_has_one_graph_per_module_and_no_recompiles(shards, tmp_path, mode, sharing):
    settings = (*SMALL, *NO_DROPOUT, f"sharing={sharing}", f"decoupled={mode == 'decoupled'}")
    torch._dynamo.reset()
    counters.clear()
    with torch._dynamo.config.patch(error_on_recompile=True):  # a recompile would raise
        compiled = train_here(shards, str(tmp_path / "compiled"), *settings, *COMPILED)
    graphs = counters["stats"]["unique_graphs"]
    assert graphs == (2 if mode == "decoupled" else 1)  # G+sampling+D, or G+sampling and D
    assert not counters["graph_break"]
    eager = train_here(shards, str(tmp_path / "eager"), *settings)
    for a, b in zip(deterministic(compiled), deterministic(eager), strict=True):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-7)
