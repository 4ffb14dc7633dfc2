"""The `mdeberta clean` command. Light: Beam and the job load only when it runs."""

from __future__ import annotations

import json

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
    from mdeberta.config import flag_overrides, load_config
    from mdeberta.pipelines.clean import run_clean
    from mdeberta.pipelines.clean_config import CleanConfig

    given = {
        "languages": languages,
        "max_docs_per_lang": max_docs_per_lang,
        "on_bad_file": on_bad_file,
    }
    # --set wins over the flags, which win over the TOML file.
    flags = flag_overrides(given)
    cfg = load_config(CleanConfig, config, [*flags, *set_])
    # Unknown options land in `inputs` too (it is variadic): the inputs are what precedes them.
    first = next((i for i, x in enumerate(inputs) if x.startswith("-")), len(inputs))
    inputs, beam_args = inputs[:first], [*inputs[first:], *ctx.args]
    if not inputs:
        raise typer.BadParameter("give the input files before any Beam option", param_hint="INPUTS")
    stats = run_clean(inputs, output, cfg, beam_args, workers=workers)
    typer.echo(json.dumps(stats["totals"], indent=2, sort_keys=True))


clean.context_settings = _EXTRA
