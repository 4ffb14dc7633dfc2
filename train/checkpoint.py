"""Checkpoints: everything needed to continue a run as if it had never stopped.

    {run}/checkpoints/step-00001000/
        model.safetensors     generator.* and discriminator.* (E_delta included), fp32
        optimizer.pt          optimizers, schedulers, fp16's loss scaler (tensors and numbers)
        rank-00000.pt ...     per rank: data position (epoch, consumed) and RNG states as tensors
        meta.json             step, tokens, world size, each file's sha256 and size; written last

Every .pt file loads with torch.load(weights_only=True). A checkpoint is written into
`step-N.partial/` and renamed into place when complete, so a crash (even SIGKILL) leaves either the
previous checkpoint or the new one, never half of one; `.partial` leftovers are removed on resume.

A checkpoint verifies itself: loading checks every file against meta.json before restoring
anything, so a cut copy, a full disk or a flipped bit is a CheckpointError naming the file, not a
deserialisation traceback. Resume takes the newest checkpoint that verifies and moves the newer
ones it skipped to `step-N.rejected/` (kept for inspection, never listed or pruned). Pruning never
deletes the checkpoint just written.
"""

from __future__ import annotations

import hashlib
import io as _io
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import safetensors.torch
import torch

from mdeberta import io
from mdeberta.manifest import PLAIN_NAME, ManifestError, checked_name, checked_sha256, verify_files

CHECKPOINTS = "checkpoints"
META = "meta.json"
MODEL = "model.safetensors"
TRAINING = "optimizer.pt"  # optimizers and schedulers: one more state entry goes in here
REJECTED = ".rejected"
_NAME = re.compile(r"^step-(\d{8})$")
T = TypeVar("T")


class CheckpointError(ManifestError):
    """A checkpoint whose files do not match its meta.json: missing, cut short or corrupt."""


@dataclass
class RankState:
    """What differs between ranks: where its data stream is and its random generators."""

    epoch: int
    consumed: int
    rng: dict[str, torch.Tensor]


# names and discovery


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def rank_file(rank: int) -> str:
    return f"rank-{rank:05d}.pt"


def list_checkpoints(run_dir: str) -> list[tuple[int, str]]:
    """(step, url) of the complete checkpoints of a run, oldest first."""
    root = io.join(run_dir, CHECKPOINTS)
    if not io.exists(root):
        return []
    found = []
    for name in io.listdir(root):
        match = _NAME.match(name)
        if match and io.exists(io.join(root, name, META)):
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


def _write(url: str, data: bytes) -> dict[str, Any]:
    """Write `data` to `url`; return its record for meta.json (hashed from memory: no re-read)."""
    with io.open_file(url, "wb", compression=None) as f:
        f.write(data)
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _pt_bytes(obj: Any) -> bytes:
    buffer = _io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _from_pt(data: bytes) -> Any:
    return torch.load(_io.BytesIO(data), map_location="cpu", weights_only=True)


def _weights_bytes(state_dict: dict[str, torch.Tensor]) -> bytes:
    return safetensors.torch.save(
        {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    )


def _read_verified(checkpoint: str, name: str, record: dict[str, Any]) -> bytes:
    """The bytes of one file of a checkpoint, after checking them against its meta.json record."""
    url = io.join(checkpoint, name)
    try:
        with io.open_file(url, "rb", compression=None) as f:
            data = f.read()
    except FileNotFoundError:
        raise CheckpointError(f"{url}: listed in {META} but missing") from None
    if len(data) != record["bytes"]:
        what = "cut short" if len(data) < record["bytes"] else "longer than written"
        raise CheckpointError(
            f"{url}: {len(data)} bytes but {META} records {record['bytes']}: the file is {what}"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != record["sha256"]:
        raise CheckpointError(
            f"{url}: sha256 {digest} but {META} records {record['sha256']}: the file is corrupt"
        )
    return data


# saving


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
    files: dict[str, dict[str, Any]] = {}
    if rank == 0:
        io.makedirs(partial)
        files[MODEL] = _write(io.join(partial, MODEL), _weights_bytes(model.state_dict()))
        training = {
            "optimizers": [o.state_dict() for o in optimizers],
            "schedulers": [s.state_dict() for s in schedulers],
            **({"scaler": scaler.state_dict()} if scaler is not None else {}),
        }
        files[TRAINING] = _write(io.join(partial, TRAINING), _pt_bytes(training))
    barrier()  # the directory exists before other ranks write into it
    mine = {
        "epoch": torch.tensor(rank_state.epoch),
        "consumed": torch.tensor(rank_state.consumed),
        "rng": rank_state.rng,
    }
    files[rank_file(rank)] = _write(io.join(partial, rank_file(rank)), _pt_bytes(mine))
    barrier()
    if rank == 0:
        for other in range(1, world_size):  # small files: hashed here, read back once
            url = io.join(partial, rank_file(other))
            files[rank_file(other)] = {"sha256": io.sha256_file(url), "bytes": io.file_size(url)}
        verify_files(partial, files, content=False)  # every file there, at its size
        meta = {
            "step": step,
            "tokens": tokens,
            "world_size": world_size,
            "time": time.time(),
            "files": files,
        }
        io.write_json(io.join(partial, META), meta)
        fs, path = io.url_to_fs(partial)
        fs.mv(path, io.url_to_fs(final)[1], recursive=True)
        prune_checkpoints(run_dir, keep, protect=final)
    barrier()
    return final


def prune_checkpoints(run_dir: str, keep: int, protect: str | None = None) -> None:
    """Delete all but the last `keep` complete checkpoints, never `protect` (the one just
    written), and any interrupted `.partial` dirs."""
    root = io.join(run_dir, CHECKPOINTS)
    fs, _ = io.url_to_fs(root)
    for _, url in list_checkpoints(run_dir)[:-keep]:
        if url != protect:
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


# loading


def read_meta(checkpoint: str) -> dict[str, Any]:
    """A checkpoint's meta.json with its file records checked (CheckpointError naming it)."""
    url = io.join(checkpoint, META)
    try:
        meta = io.read_json(url)
    except FileNotFoundError:
        raise CheckpointError(f"{url}: missing") from None
    except ValueError as e:  # not JSON: cut short
        raise CheckpointError(str(e)) from None
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict):
        raise CheckpointError(
            f"{url}: records no file checksums (written by an mdeberta before 0.2?), so the "
            "checkpoint cannot be verified"
        )
    for name, record in files.items():
        checked_name(name, PLAIN_NAME, url, CheckpointError)
        if not isinstance(record, dict) or type(record.get("bytes")) is not int:
            raise CheckpointError(f"{url}: {name}: a record is {{sha256, bytes}}, got {record!r}")
        checked_sha256(record.get("sha256"), f"{url}: {name}", CheckpointError)
    needed = [MODEL, TRAINING, *(rank_file(r) for r in range(int(meta.get("world_size", 1))))]
    missing = [name for name in needed if name not in files]
    if missing:
        raise CheckpointError(f"{url}: records no {', '.join(missing)}")
    return meta


def read_weights(checkpoint: str) -> dict[str, torch.Tensor]:
    """The model weights of a checkpoint, verified against its meta.json."""
    meta = read_meta(checkpoint)
    return safetensors.torch.load(_read_verified(checkpoint, MODEL, meta["files"][MODEL]))


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
    """Verify every file of `checkpoint`, then restore model, optimizers, schedulers (and fp16's
    scaler) in place; return (meta, this rank's state). A CheckpointError names a file that
    fails; nothing is restored then."""
    meta = read_meta(checkpoint)
    if meta["world_size"] != world_size:
        raise ValueError(
            f"{checkpoint} was written by {meta['world_size']} processes, but this run has "
            f"{world_size}: each rank resumes its own data stream, so resume with "
            f"--nproc_per_node {meta['world_size']} (same global batch)"
        )
    files = meta["files"]
    for other in range(world_size):  # every rank checks all: every rank reaches the same verdict
        data = _read_verified(checkpoint, rank_file(other), files[rank_file(other)])
        if other == rank:
            mine = _from_pt(data)
    weights = safetensors.torch.load(_read_verified(checkpoint, MODEL, files[MODEL]))
    training = _from_pt(_read_verified(checkpoint, TRAINING, files[TRAINING]))
    model.load_state_dict(weights)
    for optimizer, state in zip(optimizers, training["optimizers"], strict=True):
        optimizer.load_state_dict(state)
    for scheduler, state in zip(schedulers, training["schedulers"], strict=True):
        scheduler.load_state_dict(state)
    if scaler is not None and "scaler" in training:
        scaler.load_state_dict(training["scaler"])
    return meta, RankState(int(mine["epoch"]), int(mine["consumed"]), mine["rng"])


def newest_that_loads(
    run_dir: str, load: Callable[[str], T]
) -> tuple[str, T, list[tuple[str, str]]] | None:
    """(url, load(url), [(newer url, why it failed)]) for the newest checkpoint that `load` takes
    without a CheckpointError; None for a run without checkpoints. If none loads, a
    CheckpointError names each and why, in one line."""
    failures: list[tuple[str, str]] = []
    for _, url in reversed(list_checkpoints(run_dir)):
        try:
            return url, load(url), failures
        except CheckpointError as e:
            failures.append((url, str(e)))
    if failures:
        reasons = "; ".join(why for _, why in failures)
        raise CheckpointError(
            f"{run_dir}: no checkpoint verifies ({reasons}); restore one from a copy, or start "
            "the run over with --fresh"
        )
    return None


def resume(
    run_dir: str,
    load: Callable[[str], tuple[dict[str, Any], RankState]],
    *,
    rank: int = 0,
    barrier: Callable[[], None] = lambda: None,
) -> tuple[str, dict[str, Any], RankState] | None:
    """Resume from the newest checkpoint that verifies (every rank calls this): `load` is
    load_checkpoint with this rank's objects bound. (url, meta, this rank's state), or None for a
    run without checkpoints. Rank 0 says in one line each which newer checkpoints it skipped and
    why, and moves them to step-N.rejected/."""
    found = newest_that_loads(run_dir, load)
    if found is None:
        return None
    url, (meta, mine), failures = found
    barrier()  # every rank has read what it needs before a skipped checkpoint moves
    if rank == 0:
        for bad, why in failures:
            print(f"mdeberta: skipped {bad}: {why}; moved it to {_reject(bad)}", file=sys.stderr)
        remove_partials(run_dir)
    barrier()
    return url, meta, mine


def _reject(url: str) -> str:
    """Move a checkpoint that failed to verify out of the run's list (kept for inspection)."""
    fs, _ = io.url_to_fs(url)
    target, n = f"{url}{REJECTED}", 1
    while io.exists(target):
        n += 1
        target = f"{url}{REJECTED}-{n}"
    fs.mv(io.url_to_fs(url)[1], io.url_to_fs(target)[1], recursive=True)
    return target
