"""The Beam commands `mdeberta clean` and `mdeberta shard` (also `python -m
mdeberta.pipelines.clean|shard`). Light at import: Beam and the jobs load only when one runs."""

from __future__ import annotations

import json

import typer

from mdeberta.command import config_command, standalone
from mdeberta.pipelines.clean_config import CleanConfig
from mdeberta.pipelines.shard_config import ShardConfig


@config_command(CleanConfig, extra_args=True)
def clean(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(  # noqa: B008
        ..., help="CC-100 files (xx.txt.xz, .gz, .zst, plain) or JSONL; globs, dirs, fsspec URLs."
    ),
    output: str = typer.Option(..., help="Output directory of the clean corpus."),
    workers: int | None = typer.Option(
        None, help="Local worker processes (FnApiRunner; more than 1 uses multi-processing)."
    ),
    *,
    cfg: CleanConfig,
) -> None:
    """Normalise, filter and deduplicate CC-100 text into {output}/{lang}/part-*.jsonl.zst.

    Writes stats.json (documents in and out per language, removals by reason), manifest.json last.
    Every threshold of the rules is an option below (and a key of --config/--set).

    Unknown options go to Beam, e.g. for Dataflow (docs/dataflow.md):

    \b
      --runner DataflowRunner --project P --region R --temp_location gs://B/tmp
      --setup_file ./pyproject.toml

    \b
    Example:
      mdeberta clean data/cc100/*.txt.xz --output clean/ --languages xnli \\
          --workers 2
    """
    # lazy: keeps `mdeberta --help` light (the job imports Beam)
    from mdeberta.pipelines.clean import run_clean

    # Unknown options land in `inputs` too (it is variadic): the inputs are what precedes them.
    first = next((i for i, x in enumerate(inputs) if x.startswith("-")), len(inputs))
    inputs, beam_args = inputs[:first], [*inputs[first:], *ctx.args]
    if not inputs:
        raise typer.BadParameter("give the input files before any Beam option", param_hint="INPUTS")
    stats = run_clean(inputs, output, cfg, beam_args, workers=workers)
    typer.echo(json.dumps(stats["totals"], indent=2, sort_keys=True))


@config_command(ShardConfig, required=("corpus", "vocab", "output"), extra_args=True)
def shard(ctx: typer.Context, *, cfg: ShardConfig) -> None:
    """Tokenise a clean corpus, α-sample languages, pack [CLS] ... [SEP] sequences into shards.

    Unknown options go to Beam (e.g. --runner DataflowRunner --project P --region R).

    \b
    Example:
      mdeberta shard --corpus clean/ --vocab vocab/ --output shards/ --workers 2
    """
    # lazy: keeps `mdeberta --help` light (the job imports Beam and SentencePiece)
    from mdeberta.pipelines.shard import run

    manifest = run(cfg, ctx.args)
    summary = {
        "output": cfg.output,
        "sequences": manifest["num_sequences"],
        "shards": len(manifest["shards"]),
        "capped_languages": sorted(k for k, v in manifest["languages"].items() if v["capped"]),
        "languages": {
            k: {"q": round(v["q"], 5), "passes": round(v["passes"], 3), "tokens": v["tokens"]}
            for k, v in manifest["languages"].items()
        },
    }
    typer.echo(json.dumps(summary, indent=2))


main_clean = standalone(clean, "python -m mdeberta.pipelines.clean")
main_shard = standalone(shard, "python -m mdeberta.pipelines.shard")
