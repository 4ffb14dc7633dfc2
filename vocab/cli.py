"""The `mdeberta build-vocab` and `extend-vocab` commands. Light: Beam and SentencePiece load only
when one runs."""

from __future__ import annotations

import json

import typer

from mdeberta.command import config_command
from mdeberta.vocab.config import VocabConfig
from mdeberta.vocab.extend_config import ExtendVocabConfig


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


@config_command(ExtendVocabConfig, required=("base", "corpus", "output", "add"), extra_args=True)
def extend_vocab(ctx: typer.Context, *, cfg: ExtendVocabConfig) -> None:
    """Add the pieces a new language needs to a vocabulary, keeping every id it has.

    Trains a unigram model on an α-sampled sample of the corpus (normalised as the base normalises
    text), keeps the --add most probable pieces the base lacks, and writes a vocabulary directory
    like build-vocab's: the base's ids unchanged ([MASK] included), the new pieces after them,
    extension.json (each new piece's base segmentation, from which `train --init-from` starts its
    embedding), report.json / report.md (pieces per word before and after, lines changed) and
    manifest.json last, which names the base's sha256. Unknown options go to Beam.

    \b
    Example:
      mdeberta extend-vocab --base mdeberta-v3-base/ --corpus clean-am/ \\
          --output vocab-am/ --add 8000 --check-corpus clean-base/
    """
    # lazy: keeps `mdeberta --help` light (extending imports SentencePiece, the sample Beam)
    from mdeberta.vocab.extend import extend_vocab as run

    manifest = run(cfg, list(ctx.args))
    extension = manifest["extension"]
    summary = {
        "output": cfg.output,
        "vocab_size": manifest["vocab_size"],
        "spm_sha256": manifest["spm_sha256"],
        "base": extension["base"],
        "added": extension["added"],
        "first_new_id": extension["first_new_id"],
    }
    typer.echo(json.dumps(summary, indent=2))
