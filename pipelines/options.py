"""Beam pipeline options shared by the jobs: local defaults, --workers, pass-through of the rest.

Locally a job runs on FnApiRunner (bare DirectRunner first tries to download the Prism runner and
can hang offline). `workers=1` runs in this process; `workers=N>1` starts N SDK worker processes
(direct_running_mode=multi_processing), which is also a check that every DoFn pickles, as Dataflow
needs. Any other option (--runner DataflowRunner, --project, --temp_location, --setup_file ...)
goes to Beam untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

LOCAL_RUNNERS = ("FnApiRunner", "DirectRunner", "SwitchingDirectRunner", "BundleBasedDirectRunner")


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
    """Beam's argv: `args` plus FnApiRunner unless a runner is named, plus the worker settings.

    `workers` only applies to local runners and never overrides --direct_num_workers or
    --direct_running_mode given explicitly.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    out = list(args)
    runner = option_value(out, "runner")
    if runner is None:
        runner = "FnApiRunner"
        out.append(f"--runner={runner}")
    if runner in LOCAL_RUNNERS and workers is not None:
        if option_value(out, "direct_running_mode") is None:
            mode = "multi_processing" if workers > 1 else "in_memory"
            out.append(f"--direct_running_mode={mode}")
        if option_value(out, "direct_num_workers") is None:
            out.append(f"--direct_num_workers={workers}")
    return out


def pipeline_options(args: Sequence[str] = (), *, workers: int | None = None, **overrides):
    """PipelineOptions from `beam_args(args, workers=workers)`; Beam judges unknown flags."""
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(beam_args(args, workers=workers), **overrides)
