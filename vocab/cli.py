"""The `mdeberta build-vocab` command. Light: Beam and SentencePiece load only when it runs."""

from __future__ import annotations

import json

import typer

from mdeberta.command import config_command
from mdeberta.vocab.config import VocabConfig


@config_command(VocabConfig, required=("corpus", "output"), extra_args=True)
def build_vocab(ctx: typer.Context, *, cfg: VocabConfig) -> None:
    """Train a unigram SentencePiece vocabulary on α-sampled paragraphs of a clean corpus.

    Writes spm.model, spm.vocab, the Hugging Face tokenizer files ([PAD]=0 [CLS]=1 [SEP]=2 [UNK]=3,
    [MASK] last), report.json and report.md, and manifest.json last. Checks before training that
    the vocabulary size is possible and that the trainer fits in memory. Unknown options go to
    Beam (the sampling job, which --keep-sample keeps in OUTPUT/sample/).

    \b
    Example:
      mdeberta build-vocab --corpus clean/ --output vocab/ --vocab-size 32000 \\
          --sentences 1000000
    """
    # lazy: keeps `mdeberta --help` light (building imports SentencePiece, the sample Beam)
    from mdeberta.vocab.build import build_vocab as run

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
