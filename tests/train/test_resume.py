"""SIGKILL mid-run, rerun the same command: the run continues bit for bit (CPU), fp16 too."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from mdeberta.train.checkpoint import list_checkpoints
from mdeberta.train.metrics import read_metrics
from tests.train.helpers import (
    QUICK,
    REFERENCE,
    REPO,
    TINY,
    deterministic,
    run_train,
    subprocess_env,
    train_here,
)


def start(data: str, output: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "mdeberta.train", "--data", data, "--output", output]
    args += ["--config", TINY]
    for item in [*QUICK, *REFERENCE]:
        args += ["--set", item]
    return subprocess.Popen(
        args, cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def kill_after_first_checkpoint(proc: subprocess.Popen, run: Path) -> None:
    deadline = time.monotonic() + 120
    while not list_checkpoints(str(run)) and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"run ended before a checkpoint: {proc.stderr.read()[-2000:]}")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_sigkill_then_resume_is_bit_identical(shards, reference_run, tmp_path):
    run = tmp_path / "run"
    proc = start(shards, str(run))
    kill_after_first_checkpoint(proc, run)
    assert proc.returncode == -signal.SIGKILL
    steps_at_kill = [s for s, _ in list_checkpoints(str(run))]
    assert steps_at_kill and steps_at_kill[-1] < 24 and not (run / "manifest.json").exists()

    run_train(shards, str(run), *REFERENCE)  # the same command resumes

    assert deterministic(read_metrics(str(run))) == deterministic(read_metrics(reference_run))
    final = "checkpoints/step-00000024/model.safetensors"
    assert (run / final).read_bytes() == (Path(reference_run) / final).read_bytes()
    assert not list((run / "checkpoints").glob("*.partial"))


def test_fp16_resume_restores_the_loss_scale_bit_for_bit(shards, tmp_path):
    settings = ("precision=fp16", "steps=8", "checkpoint_interval=4", "log_interval=2")
    full = tmp_path / "full"
    rows = train_here(shards, str(full), *settings)
    step4 = full / "checkpoints" / "step-00000004"
    scale = torch.load(step4 / "optimizer.pt", weights_only=True)["scaler"]["scale"]
    assert scale < 2.0**16  # the scale has moved: a fresh scaler would not resume exactly
    # the same run stopped after its step-4 checkpoint
    part = tmp_path / "part"
    shutil.copytree(full, part)
    shutil.rmtree(part / "checkpoints" / "step-00000008")
    (part / "manifest.json").unlink()
    resumed = train_here(shards, str(part), *settings)
    assert deterministic(resumed) == deterministic(rows)
    final = "checkpoints/step-00000008/model.safetensors"
    assert (part / final).read_bytes() == (full / final).read_bytes()
