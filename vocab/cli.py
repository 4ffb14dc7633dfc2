"""The `mdeberta build-vocab` command. Light: Beam and SentencePiece load only when it runs."""

from __future__ import annotations

import json

import typer

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def build_vocab(
    ctx: typer.Context,
    corpus: str = typer.Option(..., help="Clean corpus directory (mdeberta clean)."),
    output: str = typer.Option(..., help="Vocabulary directory to write."),
    vocab_size: int = typer.Option(250_000, help="SentencePiece pieces ([MASK] comes on top)."),
    alpha: float = typer.Option(0.3, help="Language sampling exponent: q ∝ p^alpha."),
    sentences: int = typer.Option(10_000_000, help="Paragraphs to sample for training."),
    seed: int = typer.Option(12345, help="Seed of the sample and of SentencePiece."),
    languages: str = typer.Option(None, help="Codes or a preset (default: all in the corpus)."),
    max_passes: float = typer.Option(10.0, help="Most repetitions of a small language's text."),
    workers: int = typer.Option(1, help="Local Beam worker processes for the sample."),
    compare: str = typer.Option(None, help="Another spm.model to put beside ours in the report."),
    keep_sample: bool = typer.Option(False, help="Keep the sampled text in OUTPUT/sample/."),
    strict: bool = typer.Option(False, help="Refuse a vocabulary that fits a language badly."),
    config: str = typer.Option(None, help="TOML file of VocabConfig settings."),
    set_: list[str] = typer.Option([], "--set", help="KEY=VALUE VocabConfig override."),  # noqa: B008
) -> None:
    """Train a unigram SentencePiece vocabulary on α-sampled paragraphs of a clean corpus.

    Writes spm.model, spm.vocab, the Hugging Face tokenizer files ([PAD]=0 [CLS]=1 [SEP]=2 [UNK]=3,
    [MASK] last), report.json and report.md, and manifest.json last. Checks before training that
    the vocabulary size is possible and that the trainer fits in memory. Unknown options go to
    Beam (the sampling job).

    Example: mdeberta build-vocab --corpus clean/ --output vocab/ --vocab-size 32000
    --sentences 1000000
    """
    from mdeberta.config import flag_overrides, load_config
    from mdeberta.vocab.build import build_vocab as run
    from mdeberta.vocab.config import VocabConfig

    given = {
        "corpus": corpus,
        "output": output,
        "vocab_size": vocab_size,
        "alpha": alpha,
        "sentences": sentences,
        "seed": seed,
        "languages": languages,
        "max_passes": max_passes,
        "workers": workers,
        "compare": compare,
        "keep_sample": keep_sample,
        "strict": strict,
    }
    # Flags set on the command line win over the TOML file; --set wins over both.
    flags = flag_overrides(given, ctx if config else None)
    cfg = load_config(VocabConfig, config, [*flags, *set_])
    manifest = run(cfg, list(ctx.args))
    summary = {
        "output": cfg.output,
        "vocab_size": manifest["vocab_size"],
        "spm_sha256": manifest["spm_sha256"],
        "special_ids": manifest["special_ids"],
        "sample": manifest["sample"]["totals"],
        "capped_languages": sorted(
            k for k, v in manifest["sampling"]["languages"].items() if v["capped"]
        ),
    }
    typer.echo(json.dumps(summary, indent=2))


build_vocab.context_settings = _EXTRA
