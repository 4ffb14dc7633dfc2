"""torchrun with 2 gloo processes trains the same model as 1 process with the same global batch."""

from __future__ import annotations

import pytest

from mdeberta import io
from mdeberta.train.metrics import read_metrics
from tests.train.helpers import NO_DROPOUT, deterministic, run_train, train_here

SETTINGS = ("steps=6", "log_interval=1", "checkpoint_interval=6", *NO_DROPOUT)


def test_two_processes_match_one(shards, tmp_path):
    # 1 process: 2 micro-batches of 8 per step; 2 processes: 1 micro-batch of 8 each
    single = train_here(shards, str(tmp_path / "one"), *SETTINGS)
    run_train(shards, str(tmp_path / "two"), *SETTINGS, nproc=2, timeout=240)
    double = read_metrics(str(tmp_path / "two"))
    assert len(single) == len(double) == 6
    for a, b in zip(deterministic(single), deterministic(double), strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-5), (a["step"], key)
    # the run records its world size and each rank's data position and RNG
    assert io.read_json(str(tmp_path / "two" / "run.json"))["world_size"] == 2
    ranks = sorted(
        p.name for p in (tmp_path / "two" / "checkpoints" / "step-00000006").glob("rank-*")
    )
    assert ranks == ["rank-00000.pt", "rank-00001.pt"]
