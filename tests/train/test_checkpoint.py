"""Checkpoints: RNG as tensors, weights_only loading, atomic directories, keep-last-K, and files
verified against meta.json with fallback to the newest checkpoint that verifies."""

from __future__ import annotations

import functools
import hashlib
import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from mdeberta.train import checkpoint as ckpt


def draws():
    return torch.rand(3).tolist(), random.random(), float(np.random.rand()), np.random.normal()


def test_rng_states_round_trip():
    np.random.normal()  # leaves a cached gaussian in numpy's state
    state = ckpt.capture_rng()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    expected = draws()
    draws()
    ckpt.restore_rng(state)
    assert draws() == expected


def make(tmp_path, steps, keep=2):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))
    for step in steps:
        model(torch.ones(1, 3)).sum().backward()
        opt.step()
        sched.step()
        ckpt.save_checkpoint(
            str(tmp_path),
            step=step,
            tokens=step * 10,
            model=model,
            optimizers=[opt],
            schedulers=[sched],
            rank_state=ckpt.RankState(0, step * 4, ckpt.capture_rng()),
            keep=keep,
        )
    return model, opt, sched


def test_save_load_and_keep_last_k(tmp_path):
    model, opt, sched = make(tmp_path, [1, 2, 3])
    assert [s for s, _ in ckpt.list_checkpoints(str(tmp_path))] == [2, 3]
    latest = ckpt.latest_checkpoint(str(tmp_path))
    for name in ("optimizer.pt", "rank-00000.pt"):  # plain tensors and numbers only
        torch.load(f"{latest}/{name}", weights_only=True)
    fresh = torch.nn.Linear(3, 2)
    f_opt = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    f_sched = torch.optim.lr_scheduler.LambdaLR(f_opt, lambda s: 1.0 / (s + 1))
    meta, mine = ckpt.load_checkpoint(latest, model=fresh, optimizers=[f_opt], schedulers=[f_sched])
    assert meta["step"] == 3 and meta["tokens"] == 30 and (mine.epoch, mine.consumed) == (0, 12)
    assert torch.equal(fresh.weight, model.weight)
    assert f_sched.last_epoch == sched.last_epoch
    assert torch.equal(
        f_opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )


def test_interrupted_checkpoint_is_ignored_and_cleaned(tmp_path):
    make(tmp_path, [1])
    partial = tmp_path / "checkpoints" / "step-00000002.partial"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half")
    no_meta = tmp_path / "checkpoints" / "step-00000003"
    no_meta.mkdir()
    assert ckpt.latest_checkpoint(str(tmp_path)).endswith("step-00000001")
    ckpt.remove_partials(str(tmp_path))
    assert not partial.exists()


def test_world_size_must_match(tmp_path):
    model, opt, sched = make(tmp_path, [1])
    with pytest.raises(ValueError, match="written by 1 processes.*--nproc_per_node 1"):
        ckpt.load_checkpoint(
            ckpt.latest_checkpoint(str(tmp_path)),
            model=model,
            optimizers=[opt],
            schedulers=[sched],
            world_size=2,
        )


def fresh_objects():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    return model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))


def load(url, world_size=1, rank=0):
    model, opt, sched = fresh_objects()
    ckpt.load_checkpoint(
        url, model=model, optimizers=[opt], schedulers=[sched], rank=rank, world_size=world_size
    )
    return model


def test_meta_records_every_file_with_its_sha256_and_size(tmp_path):
    make(tmp_path, [1])
    latest = Path(ckpt.latest_checkpoint(str(tmp_path)))
    files = json.loads((latest / "meta.json").read_text())["files"]
    assert sorted(files) == ["model.safetensors", "optimizer.pt", "rank-00000.pt"]
    for name, record in files.items():
        data = (latest / name).read_bytes()
        assert record == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.pt", "rank-00000.pt"])
def test_a_damaged_file_is_named_and_nothing_is_restored(tmp_path, name):
    make(tmp_path, [1])
    latest = Path(ckpt.latest_checkpoint(str(tmp_path)))
    data = bytearray((latest / name).read_bytes())
    data[len(data) // 2] ^= 1
    (latest / name).write_bytes(bytes(data))
    model, opt, sched = fresh_objects()
    before = model.weight.clone()
    with pytest.raises(ckpt.CheckpointError, match=rf"{name}: sha256 .* corrupt"):
        ckpt.load_checkpoint(str(latest), model=model, optimizers=[opt], schedulers=[sched])
    assert torch.equal(model.weight, before) and not opt.state


@pytest.mark.parametrize(
    "files",
    [
        {"../../model.safetensors": {"sha256": "0" * 64, "bytes": 1}},
        {"model.safetensors": {"sha256": "../x", "bytes": 1}},
        {"model.safetensors": {"sha256": "0" * 64, "bytes": "1"}},
        {"model.safetensors": {"sha256": "0" * 64, "bytes": 1}},  # optimizer.pt, rank-0 missing
        None,  # an mdeberta that recorded no checksums
    ],
    ids=["parent", "sha-path", "bytes-str", "incomplete", "none"],
)
def test_crafted_meta_is_refused_naming_it(tmp_path, files):
    make(tmp_path, [1])
    latest = Path(ckpt.latest_checkpoint(str(tmp_path)))
    meta = json.loads((latest / "meta.json").read_text())
    meta["files"] = files
    (latest / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ckpt.CheckpointError, match=r"step-00000001/meta\.json: "):
        load(str(latest))


def test_resume_takes_the_newest_that_verifies_and_pruning_keeps_it(tmp_path, capsys):
    model, opt, sched = make(tmp_path, [1, 2, 3], keep=3)
    cut = tmp_path / "checkpoints" / "step-00000003" / "optimizer.pt"
    cut.write_bytes(cut.read_bytes()[:10])
    load = functools.partial(
        ckpt.load_checkpoint, model=model, optimizers=[opt], schedulers=[sched]
    )
    url, meta, _ = ckpt.resume(str(tmp_path), load)
    assert url.endswith("step-00000002") and meta["step"] == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "step-00000003/optimizer.pt: 10 bytes" in line and "step-00000003.rejected" in line
    assert [s for s, _ in ckpt.list_checkpoints(str(tmp_path))] == [1, 2]
    make(tmp_path, [3], keep=1)  # the resumed run saves step 3 again: only it is kept
    assert [s for s, _ in ckpt.list_checkpoints(str(tmp_path))] == [3]
    assert (tmp_path / "checkpoints" / "step-00000003.rejected" / "optimizer.pt").exists()


def test_pruning_never_deletes_the_checkpoint_just_written(tmp_path):
    make(tmp_path, [5])  # say a copy left a newer-numbered checkpoint than the run's own
    make(tmp_path, [2], keep=1)
    assert [s for s, _ in ckpt.list_checkpoints(str(tmp_path))] == [2, 5]


def test_ranks_agree_on_the_checkpoint_when_one_rank_file_is_bad(tmp_path):
    """Every rank checks every rank's file, so all ranks resume from the same checkpoint."""
    barrier = threading.Barrier(2)
    objects = [fresh_objects() for _ in range(2)]

    def save(rank, step):
        model, opt, sched = objects[rank]
        ckpt.save_checkpoint(
            str(tmp_path),
            step=step,
            tokens=step,
            model=model,
            optimizers=[opt],
            schedulers=[sched],
            rank_state=ckpt.RankState(0, step + rank, ckpt.capture_rng()),
            rank=rank,
            world_size=2,
            barrier=barrier.wait,
        )

    def resume(rank):
        model, opt, sched = objects[rank]
        load = functools.partial(
            ckpt.load_checkpoint,
            model=model,
            optimizers=[opt],
            schedulers=[sched],
            rank=rank,
            world_size=2,
        )
        found = ckpt.resume(str(tmp_path), load, rank=rank, barrier=barrier.wait)
        return found[0], found[2].consumed

    for step in (1, 2):
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(save, [0, 1], [step, step]))
    bad = tmp_path / "checkpoints" / "step-00000002" / "rank-00001.pt"
    bad.write_bytes(bad.read_bytes()[:-1])
    with ThreadPoolExecutor(2) as pool:
        (url0, consumed0), (url1, consumed1) = pool.map(resume, [0, 1])
    assert url0 == url1 and url0.endswith("step-00000001")
    assert (consumed0, consumed1) == (1, 2)  # each rank its own position


def test_fp16_loss_scaler_round_trips(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    scaler = torch.amp.GradScaler("cpu", growth_interval=5)
    for _ in range(3):  # steps without overflow count towards the next growth
        scaler.scale(model(torch.ones(1, 3)).sum()).backward()
        scaler.step(opt)
        scaler.update()
    scaler.update(new_scale=1024.0)  # not the initial scale either
    saved = dict(step=1, tokens=0, model=model, optimizers=[opt], schedulers=[sched])
    ckpt.save_checkpoint(str(tmp_path), **saved, rank_state=ckpt.RankState(0, 0, {}), scaler=scaler)
    fresh = torch.amp.GradScaler("cpu", growth_interval=5)
    ckpt.load_checkpoint(
        ckpt.latest_checkpoint(str(tmp_path)),
        model=model,
        optimizers=[opt],
        schedulers=[sched],
        scaler=fresh,
    )
    assert fresh.state_dict() == scaler.state_dict() and fresh.get_scale() == 1024.0
