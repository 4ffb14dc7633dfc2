"""Beam options and the tuning of local runs."""

from __future__ import annotations

import ctypes
import gc
import os
import sys

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from mdeberta.pipelines.options import (
    RUNNER_GC_THRESHOLD,
    WORKER_MALLOC_ENV,
    beam_args,
    pipeline,
    pipeline_options,
    tuned_for_local_run,
)


def test_beam_args_default_to_fnapirunner_and_pass_the_rest_through():
    assert beam_args([]) == ["--runner=FnApiRunner"]
    assert beam_args(["--job_name", "x"], workers=2) == [
        "--job_name",
        "x",
        "--runner=FnApiRunner",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    ]
    assert beam_args(["--runner", "DataflowRunner", "--project", "p"], workers=4) == [
        "--runner",
        "DataflowRunner",
        "--project",
        "p",
    ]
    assert "--direct_running_mode=in_memory" in beam_args([], workers=1)
    with pytest.raises(ValueError, match="workers"):
        beam_args([], workers=0)


def _worker_env(_):
    return tuple(os.environ.get(k) for k in sorted(WORKER_MALLOC_ENV))


def test_local_run_tunes_the_worker_processes_and_undoes_it_here(monkeypatch):
    for key in WORKER_MALLOC_ENV:
        monkeypatch.delenv(key, raising=False)
    threshold = gc.get_threshold()
    with pipeline([], workers=2) as p:
        assert gc.get_threshold() == RUNNER_GC_THRESHOLD and gc.get_freeze_count() > 0
        # the SDK worker processes start with the malloc settings in their environment
        expected = tuple(WORKER_MALLOC_ENV[k] for k in sorted(WORKER_MALLOC_ENV))
        envs = p | beam.Create([0, 1]) | beam.Reshuffle() | beam.Map(_worker_env)
        assert_that(envs, equal_to([expected, expected]))
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == 0
    assert not set(WORKER_MALLOC_ENV) & set(os.environ)


def _from_the_heap(size: int) -> bool:
    """Whether glibc serves a `size`-byte block from the heap (else from a mapping of its own)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    address = libc.malloc(size)
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                low, high = (int(x, 16) for x in line.split()[0].split("-"))
                if low <= address < high:
                    return line.rstrip().endswith("[heap]")
        raise AssertionError(f"{address:#x} is in no mapping")
    finally:
        libc.free(address)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_big_blocks_come_from_the_heap_during_a_local_run_only(monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_MAX_", raising=False)
    assert not _from_the_heap(64 << 20)  # glibc maps big blocks by default
    with tuned_for_local_run(beam_args([], workers=1)):
        assert _from_the_heap(64 << 20)
    # Turned back on for what runs next: a block bigger than the heap's free memory is mapped.
    assert not _from_the_heap(256 << 20)


def test_settings_in_the_environment_win_and_remote_runners_get_nothing(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    with tuned_for_local_run(beam_args([], workers=2)):
        assert os.environ["MALLOC_ARENA_MAX"] == "8"
    assert os.environ["MALLOC_ARENA_MAX"] == "8"
    threshold = gc.get_threshold()
    with tuned_for_local_run(beam_args(["--runner", "DataflowRunner"], workers=2)):
        assert gc.get_threshold() == threshold
        assert "MALLOC_TRIM_THRESHOLD_" not in os.environ


# Prism: bare DirectRunner downloads it; our defaults must never get that far


@pytest.fixture
def prism_binary_requests(monkeypatch):
    """The calls Beam makes to get a Prism binary (download or cache), each refused: a run that
    asks falls back to FnApiRunner, so only this record tells that it asked."""
    from apache_beam.runners.portability import prism_runner

    calls = []

    def refuse(self):
        calls.append(self)
        raise RuntimeError("test: no Prism binary here")

    monkeypatch.setattr(prism_runner.PrismJobServer, "_get_executable_path", refuse)
    return calls


def _run_tiny(args) -> str:
    with pipeline(args) as p:
        doubled = p | beam.Create([1, 2, 3]) | beam.Map(lambda x: 2 * x)
        assert_that(doubled, equal_to([2, 4, 6]))
    return type(p.runner).__name__


def test_default_runner_never_asks_for_prism(prism_binary_requests):
    # every job builds its pipeline through options.pipeline, so this is every job's default
    assert _run_tiny([]) == "FnApiRunner"
    assert not prism_binary_requests


@pytest.mark.skipif(
    tuple(map(int, beam.__version__.split(".")[:2])) < (2, 68), reason="Prism is tried from 2.68"
)
def test_bare_direct_runner_would_ask_for_prism(prism_binary_requests):
    """The hazard the default avoids, and proof that the record above would see it."""
    _run_tiny(["--runner", "DirectRunner"])
    assert prism_binary_requests


def test_prism_location_runs_prism_on_that_binary(tmp_path, monkeypatch):
    from apache_beam.runners.portability import prism_runner

    binary = tmp_path / "prism"
    binary.write_bytes(b"")  # never started: only the command Beam would start is checked
    args = ["--prism_location", str(binary)]
    assert beam_args(args) == [*args, "--runner=PrismRunner"]
    # a runner the user names stays (DirectRunner also reads --prism_location)
    assert beam_args(["--runner", "DirectRunner", *args])[:2] == ["--runner", "DirectRunner"]

    def no_download(url, *a, **k):
        raise AssertionError(f"downloaded {url}")

    monkeypatch.setattr(prism_runner, "urlopen", no_download)
    server = prism_runner.PrismJobServer(pipeline_options(args))
    command, _ = server.subprocess_cmd_and_endpoint()
    assert command[0] == str(binary)


def test_setup_file_becomes_absolute(tmp_path, monkeypatch):
    """Beam's stager builds the package from the file's folder: '' for a bare name, an error."""
    monkeypatch.chdir(tmp_path)
    dataflow = ["--runner", "DataflowRunner"]
    assert beam_args(["--setup_file", "pyproject.toml", *dataflow])[:2] == [
        "--setup_file",
        str(tmp_path / "pyproject.toml"),
    ]
    assert beam_args(["--setup_file=./pyproject.toml", *dataflow])[0] == (
        f"--setup_file={tmp_path / 'pyproject.toml'}"
    )
    assert beam_args(["--project", "pyproject.toml", *dataflow])[1] == "pyproject.toml"
