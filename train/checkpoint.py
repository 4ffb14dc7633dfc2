"""Checkpoints: everything needed to continue a run as if it had never stopped.

    {run}/checkpoints/step-00001000/
        model.safetensors     generator.* and discriminator.* (E_delta included), fp32
        optimizer.pt          optimizers, schedulers, fp16's loss scaler (tensors and numbers)
        rank-00000.pt ...     per rank: data position (epoch, consumed) and RNG states as tensors
        meta.json             step, tokens, world size; written last

Every .pt file loads with torch.load(weights_only=True). A checkpoint is written into
`step-N.partial/` and renamed into place when complete, so a crash (even SIGKILL) leaves either the
previous checkpoint or the new one, never half of one; `.partial` leftovers are removed on resume.
"""

from __future__ import annotations

import io as _io
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import safetensors.torch
import torch

from mdeberta import io

CHECKPOINTS = "checkpoints"
_NAME = re.compile(r"^step-(\d{8})$")


@dataclass
class RankState:
    """What differs between ranks: where its data stream is and its random generators."""

    epoch: int
    consumed: int
    rng: dict[str, torch.Tensor]


# names and discovery


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(run_dir: str) -> list[tuple[int, str]]:
    """(step, url) of the complete checkpoints of a run, oldest first."""
    root = io.join(run_dir, CHECKPOINTS)
    if not io.exists(root):
        return []
    found = []
    for name in io.listdir(root):
        match = _NAME.match(name)
        if match and io.exists(io.join(root, name, "meta.json")):
            found.append((int(match.group(1)), io.join(root, name)))
    return sorted(found)


def latest_checkpoint(run_dir: str) -> str | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


# RNG states as tensors (numpy and python states are tuples that weights_only cannot unpickle)


def capture_rng() -> dict[str, torch.Tensor]:
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python_mt": torch.tensor(mt, dtype=torch.int64),
        "python_meta": torch.tensor([version, gauss is not None], dtype=torch.int64),
        "python_gauss": torch.tensor([gauss or 0.0], dtype=torch.float64),
        "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
        "numpy_meta": torch.tensor([pos, has_gauss], dtype=torch.int64),
        "numpy_gauss": torch.tensor([cached], dtype=torch.float64),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    version, has_gauss = (int(v) for v in state["python_meta"])
    gauss = float(state["python_gauss"][0]) if has_gauss else None
    random.setstate((version, tuple(int(v) for v in state["python_mt"]), gauss))
    pos, np_has_gauss = (int(v) for v in state["numpy_meta"])
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, pos, np_has_gauss, float(state["numpy_gauss"][0])))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


# bytes in and out (fsspec: the run dir may be remote)


def _save_pt(url: str, obj: Any) -> None:
    buffer = _io.BytesIO()
    torch.save(obj, buffer)
    with io.open_file(url, "wb", compression=None) as f:
        f.write(buffer.getvalue())


def _load_pt(url: str) -> Any:
    with io.open_file(url, "rb", compression=None) as f:
        return torch.load(_io.BytesIO(f.read()), map_location="cpu", weights_only=True)


def save_weights(url: str, state_dict: dict[str, torch.Tensor]) -> None:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    with io.open_file(url, "wb", compression=None) as f:
        f.write(safetensors.torch.save(tensors))


def load_weights(url: str) -> dict[str, torch.Tensor]:
    with io.open_file(url, "rb", compression=None) as f:
        return safetensors.torch.load(f.read())


# saving and loading


def save_checkpoint(
    run_dir: str,
    *,
    step: int,
    tokens: int,
    model: torch.nn.Module,
    optimizers: list[torch.optim.Optimizer],
    schedulers: list[Any],
    rank_state: RankState,
    rank: int = 0,
    world_size: int = 1,
    barrier: Callable[[], None] = lambda: None,
    keep: int = 3,
    scaler: torch.amp.GradScaler | None = None,
) -> str:
    """Write a complete checkpoint for `step` (every rank calls this); return its url.

    scaler: fp16's loss scaler, saved in optimizer.pt (its scale and growth count)."""
    final = io.join(run_dir, CHECKPOINTS, checkpoint_name(step))
    partial = f"{final}.partial"
    if rank == 0:
        io.makedirs(partial)
        save_weights(io.join(partial, "model.safetensors"), model.state_dict())
        _save_pt(
            io.join(partial, "optimizer.pt"),
            {
                "optimizers": [o.state_dict() for o in optimizers],
                "schedulers": [s.state_dict() for s in schedulers],
                **({"scaler": scaler.state_dict()} if scaler is not None else {}),
            },
        )
    barrier()  # the directory exists before other ranks write into it
    _save_pt(
        io.join(partial, f"rank-{rank:05d}.pt"),
        {
            "epoch": torch.tensor(rank_state.epoch),
            "consumed": torch.tensor(rank_state.consumed),
            "rng": rank_state.rng,
        },
    )
    barrier()
    if rank == 0:
        meta = {"step": step, "tokens": tokens, "world_size": world_size, "time": time.time()}
        io.write_json(io.join(partial, "meta.json"), meta)
        fs, path = io.url_to_fs(partial)
        fs.mv(path, io.url_to_fs(final)[1], recursive=True)
        prune_checkpoints(run_dir, keep)
    barrier()
    return final


def prune_checkpoints(run_dir: str, keep: int) -> None:
    """Delete all but the last `keep` complete checkpoints and any interrupted `.partial` dirs."""
    root = io.join(run_dir, CHECKPOINTS)
    fs, _ = io.url_to_fs(root)
    for _, url in list_checkpoints(run_dir)[:-keep]:
        fs.rm(io.url_to_fs(url)[1], recursive=True)
    remove_partials(run_dir)


def remove_partials(run_dir: str) -> None:
    root = io.join(run_dir, CHECKPOINTS)
    if not io.exists(root):
        return
    fs, _ = io.url_to_fs(root)
    for name in io.listdir(root):
        if name.endswith(".partial"):
            fs.rm(io.url_to_fs(io.join(root, name))[1], recursive=True)


def read_meta(checkpoint: str) -> dict[str, Any]:
    return io.read_json(io.join(checkpoint, "meta.json"))


def load_checkpoint(
    checkpoint: str,
    *,
    model: torch.nn.Module,
    optimizers: list[torch.optim.Optimizer],
    schedulers: list[Any],
    rank: int = 0,
    world_size: int = 1,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[dict[str, Any], RankState]:
    """Restore model, optimizers, schedulers (and fp16's scaler) in place; return (meta, this
    rank's state)."""
    meta = read_meta(checkpoint)
    if meta["world_size"] != world_size:
        raise ValueError(
            f"{checkpoint} was written by {meta['world_size']} processes, but this run has "
            f"{world_size}: each rank resumes its own data stream, so resume with "
            f"--nproc_per_node {meta['world_size']} (same global batch)"
        )
    model.load_state_dict(load_weights(io.join(checkpoint, "model.safetensors")))
    states = _load_pt(io.join(checkpoint, "optimizer.pt"))
    for optimizer, state in zip(optimizers, states["optimizers"], strict=True):
        optimizer.load_state_dict(state)
    for scheduler, state in zip(schedulers, states["schedulers"], strict=True):
        scheduler.load_state_dict(state)
    if scaler is not None and "scaler" in states:
        scaler.load_state_dict(states["scaler"])
    mine = _load_pt(io.join(checkpoint, f"rank-{rank:05d}.pt"))
    return meta, RankState(int(mine["epoch"]), int(mine["consumed"]), mine["rng"])
