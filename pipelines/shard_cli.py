"""The `mdeberta shard` command (also `python -m mdeberta.pipelines.shard`).

Light: Beam loads on run.
"""

from __future__ import annotations

import json

import typer

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def shard(
    ctx: typer.Context,
    corpus: str = typer.Option(..., help="Clean corpus directory (mdeberta clean)."),
    vocab: str = typer.Option(..., help="Vocabulary directory (mdeberta build-vocab)."),
    output: str = typer.Option(..., help="Output directory for the token shards."),
    seq_len: int = typer.Option(512, help="Ids per sequence, [CLS] and [SEP] included."),
    alpha: float = typer.Option(0.3, help="Language sampling exponent: q ∝ p^alpha."),
    max_passes: float = typer.Option(10.0, help="Most repetitions of a language's text."),
    target_chars: int = typer.Option(None, help="Characters to draw (default: corpus size)."),
    languages: str = typer.Option(None, help="Comma-separated codes (default: all in corpus)."),
    seed: int = typer.Option(0, help="Seed of sampling, packing order and shuffle."),
    sequences_per_shard: int = typer.Option(32768, help="Sequences per shard file."),
    workers: int = typer.Option(1, help="Local worker processes."),
    overwrite: bool = typer.Option(False, help="Replace existing complete shards."),
    strict: bool = typer.Option(False, help="Refuse a vocabulary that fits a language badly."),
    config: str = typer.Option(None, help="TOML file of ShardConfig settings."),
    set_: list[str] = typer.Option([], "--set", help="KEY=VALUE ShardConfig override."),  # noqa: B008
) -> None:
    """Tokenise a clean corpus, α-sample languages, pack [CLS] ... [SEP] sequences into shards.

    Unknown options go to Beam (e.g. --runner DataflowRunner --project P --region R).

    Example: mdeberta shard --corpus clean/ --vocab vocab/ --output shards/ --workers 2
    """
    from mdeberta.config import flag_overrides, load_config
    from mdeberta.pipelines.shard import ShardConfig, run

    given = {
        "corpus": corpus,
        "vocab": vocab,
        "output": output,
        "seq_len": seq_len,
        "alpha": alpha,
        "max_passes": max_passes,
        "target_chars": target_chars,
        "languages": languages,
        "seed": seed,
        "sequences_per_shard": sequences_per_shard,
        "workers": workers,
        "overwrite": overwrite,
        "strict": strict,
    }
    # Flags set on the command line win over the TOML file; --set wins over both.
    flags = flag_overrides(given, ctx if config else None)
    cfg = load_config(ShardConfig, config, [*flags, *set_])
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


shard.context_settings = _EXTRA
