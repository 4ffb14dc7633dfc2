"""A run directory across interruptions: corrupt checkpoints, killed continuations, reruns of shard;
and what `train` checks of its data before the first step: every shard's size, and with
verify_data every shard's sha256 (a bad shard must not surface days into a run).

Each test copies the session's reference run (24 steps, checkpoints at 20 and 24) and damages it
the way a kill, a full disk or a bad copy would, then continues it in this process.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mdeberta.manifest import IncompleteArtifactError, read_manifest
from mdeberta.shards import ShardFormatError
from mdeberta.train import checkpoint as ckpt
from mdeberta.train.metrics import read_metrics
from tests.train.helpers import REFERENCE, deterministic, train_here

LAST = "checkpoints/step-00000024"


def copy_run(reference_run: str, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    return run


def flip_bit(path: Path, offset_from_end: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x10  # inside the tensor data: the file still parses
    path.write_bytes(bytes(data))


def test_a_flipped_bit_in_the_latest_checkpoint_is_skipped(reference_run, shards, tmp_path, capsys):
    run = copy_run(reference_run, tmp_path)
    flip_bit(run / LAST / "model.safetensors")
    train_here(shards, str(run), *REFERENCE, "export_at_end=false")
    err = capsys.readouterr().err
    skipped = [line for line in err.splitlines() if "step-00000024" in line and "skip" in line]
    assert len(skipped) == 1 and "model.safetensors" in skipped[0] and "sha256" in skipped[0]
    assert "(step 20)" in err
    # steps 21-24 trained again from step 20 give the uninterrupted run's weights, bit for bit
    model = "model.safetensors"
    assert (run / LAST / model).read_bytes() == (Path(reference_run) / LAST / model).read_bytes()
    assert deterministic(read_metrics(str(run))) == deterministic(read_metrics(reference_run))
    rejected = run / "checkpoints" / "step-00000024.rejected"
    assert (rejected / model).exists()  # kept aside for inspection, never listed or pruned


@pytest.mark.parametrize(
    "name", ["model.safetensors", "optimizer.pt", "rank-00000.pt"], ids=lambda n: n.split(".")[0]
)
def test_a_half_written_file_falls_back_to_the_previous_checkpoint(
    reference_run, shards, tmp_path, capsys, name
):
    run = copy_run(reference_run, tmp_path)
    path = run / LAST / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    train_here(shards, str(run), *REFERENCE, "export_at_end=false")
    err = capsys.readouterr().err
    (skipped,) = [line for line in err.splitlines() if "skip" in line]
    assert f"step-00000024/{name}" in skipped and "bytes" in skipped
    assert "(step 20)" in err and "Traceback" not in err


def test_no_checkpoint_that_verifies_is_an_error_naming_each(reference_run, shards, tmp_path):
    run = copy_run(reference_run, tmp_path)
    for step in (20, 24):
        path = run / f"checkpoints/step-{step:08d}/optimizer.pt"
        path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ckpt.CheckpointError) as info:
        train_here(shards, str(run), *REFERENCE, "steps=28")
    message = str(info.value)
    assert "step-00000020" in message and "step-00000024" in message and "--fresh" in message
    assert "\n" not in message


def test_a_killed_continuation_leaves_no_complete_manifest(
    reference_run, shards, tmp_path, monkeypatch
):
    """Defect: continuing a finished run and dying midway left manifest.json saying "complete at
    step 24" beside a newer step-28 checkpoint."""
    from mdeberta.train.loop import Trainer

    run = copy_run(reference_run, tmp_path)
    assert read_manifest(str(run), kind="run")["steps"] == 24
    save = Trainer.save

    def save_then_die(self):
        url = save(self)
        raise KeyboardInterrupt(f"killed after {url}")

    monkeypatch.setattr(Trainer, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_here(shards, str(run), *REFERENCE, "steps=32")
    assert ckpt.list_checkpoints(str(run))[-1][0] == 28
    with pytest.raises(IncompleteArtifactError):
        read_manifest(str(run))
    monkeypatch.undo()
    train_here(shards, str(run), *REFERENCE, "steps=32", "export_at_end=false")
    assert read_manifest(str(run), kind="run")["steps"] == 32  # written again once complete


def test_fresh_starts_over_in_an_existing_run_directory(reference_run, shards, tmp_path, capsys):
    run = copy_run(reference_run, tmp_path)
    rows = train_here(shards, str(run), *REFERENCE, "steps=8", "fresh=true", "export_at_end=false")
    err = capsys.readouterr().err
    assert "--fresh" in err and "step-00000024" in err  # says what it removed
    assert [r["step"] for r in rows] == [2, 4, 6, 8]
    assert [s for s, _ in ckpt.list_checkpoints(str(run))] == [4, 8]
    assert read_manifest(str(run), kind="run")["steps"] == 8
    assert not (run / "hf").exists()  # the old run's export went with it


def test_shards_made_again_with_the_same_bytes_are_the_same_data(tmp_path):
    """Defect (issue 16): a byte-identical rerun of `shard` changed only the manifest's
    created_unix, and `train` refused to resume: "was trained on other token shards"."""
    from mdeberta.pipelines.shard import run as shard
    from tests.pipelines.test_shard import config, corpus_docs, write_corpus, write_vocab

    docs = corpus_docs()
    inputs = write_corpus(tmp_path / "clean", docs), write_vocab(tmp_path / "vocab", docs)
    out = tmp_path / "shards"
    first = shard(config(inputs, out))
    run = str(tmp_path / "run")
    train_here(str(out), run, "steps=4")
    again = shard(config(inputs, out, overwrite=True))
    assert again["shards"] == first["shards"]
    rows = train_here(str(out), run, "steps=8")  # resumes: same bytes, same data
    assert [r["step"] for r in rows] == [2, 4, 6, 8]


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


def test_a_tiny_model_trains_on_one_intra_op_thread(shards, tmp_path, monkeypatch):
    """The thread rule (mdeberta/threads.py) is applied: torch's default (a thread per core) made
    the demo's hidden-32 model 5-7x slower on a shared 2-core machine."""
    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    try:
        train_here(shards, str(tmp_path / "run"), "steps=2", "checkpoint_interval=2")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(1)
