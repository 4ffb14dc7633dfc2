"""Fixtures of the trainer tests: a tiny vocabulary, token shards and one reference run."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdeberta.shards import write_token_shards
from tests.train.helpers import REFERENCE, SEQ_LEN, make_vocab, pack, run_train, sample_lines


@pytest.fixture(scope="session")
def vocab(tmp_path_factory) -> dict:
    return make_vocab(tmp_path_factory.mktemp("vocab"), sample_lines())


@pytest.fixture(scope="session")
def shards(tmp_path_factory, vocab) -> str:
    out = tmp_path_factory.mktemp("shards")
    rows = pack(Path(vocab["url"]), sample_lines())
    write_token_shards(str(out), rows, seq_len=SEQ_LEN, vocab=vocab, sequences_per_shard=128)
    return str(out)


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory, shards) -> str:
    """An uninterrupted `python -m mdeberta.train` run (with export) that several tests read."""
    out = str(tmp_path_factory.mktemp("reference") / "run")
    run_train(shards, out, *REFERENCE)
    return out
