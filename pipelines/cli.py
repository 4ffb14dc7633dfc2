"""The `mdeberta clean` command. Light: Beam and the job load only when it runs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import typer

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def clean(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(  # noqa: B008
        ..., help="CC-100 files (xx.txt.xz, .gz, .zst, plain) or JSONL; globs, dirs, fsspec URLs."
    ),
    output: str = typer.Option(..., help="Output directory of the clean corpus."),
    languages: str = typer.Option(None, help="Codes or a preset: all, xnli, xlmr (default all)."),
    max_docs_per_lang: int = typer.Option(None, help="Read at most N documents per language."),
    on_bad_file: str = typer.Option(None, help="fail (default) or skip a corrupt file, counted."),
    workers: int = typer.Option(1, help="Local worker processes (FnApiRunner)."),
    config: str = typer.Option(None, help="TOML file of CleanConfig settings (thresholds)."),
    set_: list[str] = typer.Option([], "--set", help="KEY=VALUE CleanConfig override."),  # noqa: B008
) -> None:
    """Normalise, filter and deduplicate CC-100 text into {output}/{lang}/part-*.jsonl.zst.

    Writes stats.json (documents in and out per language, removals by reason), manifest.json last.

    Unknown options go to Beam, e.g. for Dataflow (docs/dataflow.md):
    --runner DataflowRunner --project P --region R --temp_location gs://B/tmp
    --setup_file ./pyproject.toml

    Example: mdeberta clean data/cc100/*.txt.xz --output clean/ --languages xnli --workers 2
    """
    from mdeberta.config import load_config
    from pipelines.clean import CleanConfig, run_clean

    given = {
        "languages": languages,
        "max_docs_per_lang": max_docs_per_lang,
        "on_bad_file": on_bad_file,
    }
    # --set wins over the flags, which win over the TOML file.
    flags = [f"{k}={json.dumps(v)}" for k, v in given.items() if v is not None]
    cfg = load_config(CleanConfig, config, [*flags, *set_])
    # Unknown options land in `inputs` too (it is variadic): the inputs are what precedes them.
    first = next((i for i, x in enumerate(inputs) if x.startswith("-")), len(inputs))
    inputs, beam_args = inputs[:first], [*inputs[first:], *ctx.args]
    if not inputs:
        raise typer.BadParameter("give the input files before any Beam option", param_hint="INPUTS")
    stats = run_clean(inputs, output, cfg, beam_args, workers=workers)
    typer.echo(json.dumps(stats["totals"], indent=2, sort_keys=True))


clean.context_settings = _EXTRA


# `python -m pipelines.clean`: the same options through argparse, which leaves unknown ones to Beam


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.clean",
        description="Clean CC-100 files into a deduplicated corpus. Unknown options go to Beam.",
    )
    parser.add_argument("inputs", nargs="+", help="files, directories or globs (fsspec URLs)")
    parser.add_argument("--output", required=True, help="output directory (fsspec URL)")
    parser.add_argument("--languages", help="codes or a preset (all, xnli, xlmr)")
    parser.add_argument("--max-docs-per-lang", type=int)
    parser.add_argument("--on-bad-file", choices=("fail", "skip"))
    parser.add_argument("--workers", type=int, help="local worker processes (default 1)")
    parser.add_argument("--config", help="TOML file with CleanConfig settings")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return parser.parse_known_args(argv)


def config_from_args(args):
    """CleanConfig from the TOML file, then the flags, then --set (the last word wins)."""
    from mdeberta.config import load_config
    from pipelines.clean import CleanConfig

    names = ("languages", "max_docs_per_lang", "on_bad_file")
    flags = [f"{n}={json.dumps(getattr(args, n))}" for n in names if getattr(args, n) is not None]
    return load_config(CleanConfig, args.config, [*flags, *args.set])


def main(argv: Sequence[str] | None = None) -> None:
    from pipelines.clean import run_clean

    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    cfg = config_from_args(args)
    document = run_clean(args.inputs, args.output, cfg, rest, workers=args.workers)
    print(json.dumps(document["totals"], indent=2, sort_keys=True))
