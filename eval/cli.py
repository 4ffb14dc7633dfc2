"""`mdeberta eval ...`: the evaluation commands. Light at import: torch and friends load inside."""

from __future__ import annotations

import logging

import typer

from mdeberta.command import add_command, config_command, new_app
from mdeberta.eval.config import XnliConfig

app = new_app(no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Evaluate checkpoints on downstream tasks.

    \b
    Example:
      mdeberta eval xnli --model runs/base/hf/discriminator --output xnli/base
    """


@config_command(XnliConfig, flatten=("finetune",))
def xnli(*, cfg: XnliConfig) -> None:
    """Zero-shot cross-lingual XNLI: fine-tune on English, select on English dev, test 15 languages.

    Writes xnli.json, xnli.md (beside the published mDeBERTa-v3-base and XLM-R base rows),
    xnli.png and the selected classifier to --output. Sources: hub:NAME, xnli-tsv:PATH,
    multinli:PATH, mt-tsv:PATH, disk:PATH, or a recognisable path (docs/xnli.md). The fine-tuning
    recipe's options (--epochs ... --device) are the keys of the [finetune] table of --config.

    \b
    Example:
      mdeberta eval xnli --model runs/base/hf/discriminator --output xnli/base
    """
    # lazy: keeps `mdeberta --help` light (evaluation imports torch and transformers)
    from mdeberta.eval.xnli import run_xnli

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = run_xnli(cfg)  # bad input raises a ValueError that the CLI prints as one line
    typer.echo(f"average accuracy {100 * results['average']:.2f}% -> {cfg.output}/xnli.md")


add_command(app, "xnli", xnli)
