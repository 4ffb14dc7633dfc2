"""Checkpoints: RNG as tensors, weights_only loading, atomic directories, keep-last-K."""

from __future__ import annotations

import random

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
