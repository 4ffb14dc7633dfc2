"""Beam pipeline options shared by the jobs: local defaults, --workers, pass-through of the rest.

Locally a job runs on FnApiRunner (bare DirectRunner first tries to download the Prism runner and
can hang offline), or on Prism when `--prism_location` names a Prism binary the user has.
`workers=1` runs in this process; `workers=N>1` starts N SDK worker processes
(direct_running_mode=multi_processing), which is also a check that every DoFn pickles, as Dataflow
needs. Any other option (--runner DataflowRunner, --project, --temp_location, --setup_file ...)
goes to Beam untouched.

`pipeline()` also tunes the processes of a local run (`tuned_for_local_run`): FnApiRunner's runner
process relays every element between the SDK workers, several MB at a time, and with the defaults
a third of its CPU went to the kernel zeroing fresh pages and a tenth to the garbage collector
scanning its buffers (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import sys
from collections.abc import Iterator, Sequence

from mdeberta.pipelines.quiet import quiet_run

LOCAL_RUNNERS = ("FnApiRunner", "DirectRunner", "SwitchingDirectRunner", "BundleBasedDirectRunner")


def runs_locally(argv: Sequence[str]) -> bool:
    """Whether these Beam options run the job on a local runner (FnApiRunner and kin): the jobs
    size their tasks by it (scratch files cost operations on an object store, not on a disk)."""
    return option_value(beam_args(argv), "runner") in LOCAL_RUNNERS


def option_value(args: Sequence[str], name: str) -> str | None:
    """The value of `--name value` or `--name=value` in args (the last one wins), else None."""
    value = None
    for i, arg in enumerate(args):
        if arg == f"--{name}" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
    return value


def beam_args(args: Sequence[str] = (), *, workers: int | None = None) -> list[str]:
    """Beam's argv: `args` plus a runner unless one is named, plus the worker settings.

    The runner named for you is FnApiRunner, never bare DirectRunner (whose first move is to
    download Prism), or PrismRunner when --prism_location points at a Prism binary: only Prism
    reads that option, so FnApiRunner would ignore it silently. `workers` only applies to the
    FnApiRunner family and never overrides --direct_num_workers or --direct_running_mode given
    explicitly. `--setup_file` becomes an absolute path (_absolute_setup_file).
    """
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    out = [_absolute_setup_file(arg, args[i - 1] if i else "") for i, arg in enumerate(args)]
    runner = option_value(out, "runner")
    if runner is None:
        runner = "PrismRunner" if option_value(out, "prism_location") else "FnApiRunner"
        out.append(f"--runner={runner}")
    if runner in LOCAL_RUNNERS and workers is not None:
        if option_value(out, "direct_running_mode") is None:
            mode = "multi_processing" if workers > 1 else "in_memory"
            out.append(f"--direct_running_mode={mode}")
        if option_value(out, "direct_num_workers") is None:
            out.append(f"--direct_num_workers={workers}")
    return out


def _absolute_setup_file(arg: str, previous: str) -> str:
    """`--setup_file` made absolute: Beam's stager runs `python -m build` from the file's folder,
    and for a bare `pyproject.toml` that folder is '' (FileNotFoundError: '')."""
    if previous == "--setup_file" and "://" not in arg:
        return os.path.abspath(arg)
    if arg.startswith("--setup_file=") and "://" not in arg:
        return "--setup_file=" + os.path.abspath(arg.split("=", 1)[1])
    return arg


def pipeline_options(args: Sequence[str] = (), *, workers: int | None = None, **overrides):
    """PipelineOptions from `beam_args(args, workers=workers)`; Beam judges unknown flags."""
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(beam_args(args, workers=workers), **overrides)


WORKER_MALLOC_ENV = {
    # glibc maps every block over 128 KiB (at most 32 MiB, however tuned) afresh and hands it
    # back to the kernel when freed, so the next one is faulted in and zeroed again: elements
    # relayed MBs at a time paid that on every copy, and the runner joins a stage's whole input
    # into one buffer several times (a 73 MB one 8 times in a shard-job run: ~100k page faults
    # per stage, more CPU than the stage's own work). With mmap off every block comes from the
    # heap, which keeps up to 1 GiB of free memory for the next one before shrinking.
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
    "MALLOC_ARENA_MAX": "2",  # gRPC's threads would each get an arena to grow and trim
}
_MALLOPT = {"MALLOC_TRIM_THRESHOLD_": -1, "MALLOC_MMAP_MAX_": -4, "MALLOC_ARENA_MAX": -8}
GLIBC_MMAP_MAX = "65536"  # glibc's default M_MMAP_MAX, restored in this process after a run
RUNNER_GC_THRESHOLD = (100_000, 50, 100)
"""Generation 0 is collected every 100k allocations instead of 700: the runner allocates an
object or more per relayed element, and its buffers are no garbage until the run ends."""


def freeze_worker_heap() -> None:
    """Move everything allocated so far (modules, the DoFn and its tables) out of the collector's
    reach: it is never garbage, and a worker's full collections kept rescanning it. Call from
    DoFn.setup, after the imports; idempotent in effect."""
    gc.freeze()


def _mallopt(settings: dict[str, str]) -> None:
    """The same malloc settings in this (already running) process, on glibc; elsewhere nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl and others: no mallopt to speak to
        return
    for name, value in settings.items():
        if value.isdigit():  # glibc itself ignores a malformed value in the environment
            libc.mallopt(_MALLOPT[name], int(value))


@contextlib.contextmanager
def tuned_for_local_run(args: Sequence[str]) -> Iterator[None]:
    """Around a local run: malloc settings for this process and, through the environment, for
    the SDK worker processes it starts; a lazier garbage collector here. Settings already in the
    environment win. The environment, the collector and mmap use are restored afterwards (what
    runs next in this process, such as training in the demo, may want big blocks returned to the
    kernel); the other malloc settings of this process stay (glibc cannot tell their previous
    values, and they only trade memory kept for speed). A remote runner (Dataflow) gets nothing:
    its workers are not this machine's processes."""
    if option_value(args, "runner") not in LOCAL_RUNNERS:
        yield
        return
    added = {k: v for k, v in WORKER_MALLOC_ENV.items() if k not in os.environ}
    os.environ.update(added)
    _mallopt({k: os.environ[k] for k in WORKER_MALLOC_ENV})
    threshold, frozen_before = gc.get_threshold(), gc.get_freeze_count()
    gc.freeze()  # what exists now (the pipeline, its protos) lives to the end of the run
    gc.set_threshold(*RUNNER_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if not frozen_before:  # a caller's own freeze stays as it was
            gc.unfreeze()
        for key in added:
            os.environ.pop(key, None)
        if "MALLOC_MMAP_MAX_" in added:
            _mallopt({"MALLOC_MMAP_MAX_": GLIBC_MMAP_MAX})


@contextlib.contextmanager
def pipeline(args: Sequence[str] = (), *, workers: int | None = None):
    """A beam.Pipeline to build inside the with-block; it runs when the block ends, with
    `beam_args(args, workers=workers)` and tuned for a local runner (tuned_for_local_run), its
    logging quiet unless --verbose (pipelines/quiet.py)."""
    import apache_beam as beam

    argv = beam_args(args, workers=workers)
    local = option_value(argv, "runner") in LOCAL_RUNNERS
    with (
        tuned_for_local_run(argv),
        quiet_run(local),
        beam.Pipeline(options=pipeline_options(argv)) as p,
    ):
        yield p
