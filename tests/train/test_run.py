"""What `train` checks of its data before the first step: every shard's size, and with
verify_data every shard's sha256 (issue 20: a bad shard must not surface days into a run)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mdeberta.shards import ShardFormatError
from tests.train.helpers import train_here


def damaged_copy(shards: str, tmp_path: Path, damage) -> str:
    data = shutil.copytree(shards, tmp_path / "shards")
    last = sorted(data.glob("shard-*.bin"))[-1]
    last.write_bytes(damage(last.read_bytes()))
    return str(data)


def flip_one_bit(data: bytes) -> bytes:
    return data[:-3] + bytes([data[-3] ^ 0x04]) + data[-2:]


def test_a_truncated_shard_stops_training_before_the_first_step(shards, tmp_path):
    data = damaged_copy(shards, tmp_path, lambda b: b[:-8])
    with pytest.raises(ShardFormatError, match=r"shard-\d{5}\.bin: .* truncated"):
        train_here(data, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # refused before the run directory is made


def test_verify_data_hashes_every_shard_before_the_first_step(shards, tmp_path):
    data = damaged_copy(shards, tmp_path, flip_one_bit)
    with pytest.raises(ShardFormatError, match=r"shard-\d{5}\.bin: sha256 .* corrupt"):
        train_here(data, str(tmp_path / "run"), "verify_data=true")
    assert not (tmp_path / "run").exists()  # refused before the run directory is made
