"""`mdeberta eval ...`: the evaluation commands. Light at import: torch and friends load inside."""

from __future__ import annotations

import typer

from mdeberta.command import add_command, config_command, new_app
from mdeberta.eval.config import RetrievalConfig, XnliConfig

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

    results = run_xnli(cfg)  # bad input raises a ValueError that the CLI prints as one line
    typer.echo(f"average accuracy {100 * results['average']:.2f}% -> {cfg.output}/xnli.md")


add_command(app, "xnli", xnli)


@config_command(RetrievalConfig, required=("model", "data", "output"))
def retrieval(*, cfg: RetrievalConfig) -> None:
    """Parallel-sentence retrieval (XTREME's Tatoeba protocol) with baselines beside the model.

    One layer, mean-pooled, cosine, top-1 in both directions; the same architecture at a random
    initialisation and a TF-IDF bag of token ids are scored in the same run (docs/retrieval.md).
    Writes retrieval.json, retrieval.md, retrieval.png and the manifest to --output.

    \b
    Example:
      mdeberta eval retrieval --model runs/base/hf/discriminator \\
        --data laser:tatoeba/ --output retrieval/base --all-layers
    """
    # lazy: keeps `mdeberta --help` light (evaluation imports torch and transformers)
    from mdeberta.eval.retrieval import run_retrieval

    results = run_retrieval(cfg)
    line = ", ".join(f"{name} {100 * v:.1f}%" for name, v in results["average"].items())
    typer.echo(f"average top-1: {line} -> {cfg.output}/retrieval.md")


add_command(app, "retrieval", retrieval)
