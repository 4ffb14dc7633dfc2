"""Output locks: one writer per artifact directory, across real processes; stale ones taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mdeberta import io, resources_path
from mdeberta.lock import LOCK, LockedError, locks_output, output_lock, read_holder
from mdeberta.manifest import read_manifest, verify_files

REPO = Path(__file__).resolve().parents[2]
HOLD = "import sys; from mdeberta.lock import output_lock\nwith output_lock(sys.argv[1]):\n"
HOLD += "    print('held', flush=True); sys.stdin.read()"


def env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))


def hold_in_another_process(url: str) -> subprocess.Popen:
    """A process holding the lock on `url` until its stdin closes (or it is killed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env()
    )
    assert proc.stdout.readline() == b"held\n"
    return proc


def wait_for_holder(out: Path, proc: subprocess.Popen, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        holder = read_holder(str(out))
        if holder and holder["pid"] == proc.pid:
            return holder
        assert proc.poll() is None, f"the first run ended ({proc.returncode})"
        time.sleep(0.02)
    raise AssertionError(f"{out}: the first run never took a lock")


def mdeberta(*args: str) -> list[str]:
    return [sys.executable, "-m", "mdeberta", *args]


def test_two_clean_runs_into_one_output(tmp_path):
    """Defect: two `mdeberta clean` into one --output both exited 0; the second run's stale-part
    cleanup deleted parts that the first run's manifest then listed."""
    sample = resources_path("sample")
    out, log = tmp_path / "clean", tmp_path / "first.log"
    first = subprocess.Popen(
        mdeberta("clean", *(str(sample / f"{c}.txt.xz") for c in ("de", "es", "ru")),
                 "--output", str(out), "--languages", "de,es,ru"),
        env=env(), stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )  # fmt: skip
    wait_for_holder(out, first)
    first.send_signal(signal.SIGSTOP)  # frozen while holding its lock: no race in this test
    try:
        started = time.monotonic()
        second = subprocess.run(
            mdeberta("clean", str(sample / "fr.txt.xz"), str(sample / "it.txt.xz"),
                     "--output", str(out), "--languages", "fr,it"),
            env=env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 1, second.stderr[-3000:]
    (line,) = [line for line in second.stderr.splitlines() if line.startswith("mdeberta: ")]
    assert line.startswith("mdeberta: error: ") and f"pid {first.pid}" in line
    assert "mdeberta clean" in line and "since" in line
    assert time.monotonic() - started < 60  # at once: before any Beam work
    assert first.wait(timeout=300) == 0, log.read_text()[-3000:]
    manifest = read_manifest(str(out), kind="clean-corpus")
    assert manifest["languages"] == ["de", "es", "ru"]
    verify_files(str(out), manifest["files"])  # every listed part exists with its sha256
    assert not (out / LOCK).exists()


def test_a_held_lock_names_its_holder(tmp_path):
    holder = hold_in_another_process(str(tmp_path))
    try:
        with pytest.raises(LockedError) as info, output_lock(str(tmp_path)):
            pass
        message = str(info.value)
        assert f"pid {holder.pid}" in message and os.uname().nodename in message
        assert str(tmp_path) in message and "\n" not in message
    finally:
        holder.communicate(b"")
    with output_lock(str(tmp_path)):  # released when its holder finished
        assert read_holder(str(tmp_path))["pid"] == os.getpid()
    assert not (tmp_path / LOCK).exists()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, capsys):
    holder = hold_in_another_process(str(tmp_path))
    holder.kill()
    holder.wait()
    assert read_holder(str(tmp_path))["pid"] == holder.pid  # the file stays; the OS lock went
    with output_lock(str(tmp_path)):
        pass
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "stale lock" in line and f"pid {holder.pid}" in line


def test_the_output_directory_made_for_the_lock_goes_if_nothing_was_written(tmp_path):
    out = tmp_path / "new"
    with pytest.raises(RuntimeError), output_lock(str(out)):
        raise RuntimeError("the stage failed before writing anything")
    assert not out.exists()


def test_remote_lock_is_exclusive_and_takes_over_a_dead_local_holder(tmp_path, capsys):
    url = f"memory://lock-{tmp_path.name}/out"
    with output_lock(url):
        with pytest.raises(LockedError, match=rf"pid {os.getpid()}"), output_lock(url):
            pass
    assert not io.exists(io.join(url, LOCK))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = {"host": os.uname().nodename, "pid": int(dead.stdout), "command": "mdeberta x",
             "since": "2020-01-01T00:00:00Z", "token": "t"}  # fmt: skip
    io.write_text(io.join(url, LOCK), json.dumps(stale))
    with output_lock(url):
        assert read_holder(url)["pid"] == os.getpid()
    assert "stale lock" in capsys.readouterr().err
    other_host = {**stale, "host": "elsewhere"}
    io.write_text(io.join(url, LOCK), json.dumps(other_host))
    with pytest.raises(LockedError, match="delete"), output_lock(url):
        pass  # another machine's process cannot be seen: refused, saying how to clear it


def test_the_decorator_locks_the_named_argument(tmp_path):
    @locks_output("cfg.output")
    def stage(cfg, other=None):
        return read_holder(cfg.output)["pid"]

    class Cfg:
        output = str(tmp_path)

    assert stage(Cfg()) == os.getpid()
    holder = hold_in_another_process(str(tmp_path))
    try:
        with pytest.raises(LockedError):
            stage(Cfg())
    finally:
        holder.communicate(b"")


def stage_calls(out: str):
    """Every stage's entry point, called with just enough to reach its lock."""
    from mdeberta.eval.config import XnliConfig
    from mdeberta.eval.xnli import run_xnli
    from mdeberta.pipelines.clean import run_clean
    from mdeberta.pipelines.clean_config import CleanConfig
    from mdeberta.pipelines.shard import ShardConfig
    from mdeberta.pipelines.shard import run as run_shard
    from mdeberta.train.config import TrainConfig
    from mdeberta.train.export import export_run
    from mdeberta.train.run import train
    from mdeberta.vocab.build import build_vocab
    from mdeberta.vocab.config import VocabConfig

    return {
        "clean": lambda: run_clean(["in.txt"], out, CleanConfig()),
        "build-vocab": lambda: build_vocab(VocabConfig(corpus="c", output=out)),
        "shard": lambda: run_shard(ShardConfig(corpus="c", vocab="v", output=out)),
        "train": lambda: train("shards", out, TrainConfig()),
        "export": lambda: export_run("run", out),
        "eval xnli": lambda: run_xnli(XnliConfig(model="m", output=out)),
    }


@pytest.mark.parametrize("stage", ["clean", "build-vocab", "shard", "train", "export", "eval xnli"])
def test_every_stage_refuses_an_output_that_another_process_writes(tmp_path, stage):
    holder = hold_in_another_process(str(tmp_path))
    try:
        with pytest.raises(LockedError, match=f"pid {holder.pid}"):
            stage_calls(str(tmp_path))[stage]()
    finally:
        holder.communicate(b"")
