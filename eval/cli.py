"""`mdeberta eval ...`: the evaluation commands. Light at import: torch and friends load inside."""

from __future__ import annotations

import typer

from mdeberta.config import field_docs
from mdeberta.eval.config import FinetuneConfig, RetrievalConfig, XnliConfig

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
_RUN, _FT = field_docs(XnliConfig), field_docs(FinetuneConfig)
_D, _F = XnliConfig(model="-", output="-"), FinetuneConfig()


@app.callback()
def _group() -> None:
    """Evaluate checkpoints on downstream tasks.

    Example: mdeberta eval xnli --model runs/base/hf/discriminator --output xnli/base
    """


@app.command("xnli")
def xnli(
    model: str = typer.Option(..., help=_RUN["model"]),
    output: str = typer.Option(..., help=_RUN["output"]),
    train: str = typer.Option(_D.train, help=_RUN["train"]),
    dev: str = typer.Option(_D.dev, help=_RUN["dev"]),
    test: str = typer.Option(_D.test, help=_RUN["test"]),
    languages: str = typer.Option(_D.languages, help=_RUN["languages"]),
    train_language: str = typer.Option(_D.train_language, help=_RUN["train_language"]),
    max_train_examples: int = typer.Option(0, help=_RUN["max_train_examples"]),
    max_eval_examples: int = typer.Option(0, help=_RUN["max_eval_examples"]),
    eval_only: bool = typer.Option(False, "--eval-only", help=_RUN["eval_only"]),
    backend: str = typer.Option(_D.backend, help=_RUN["backend"]),
    tokenizer: str = typer.Option(_D.tokenizer, help=_RUN["tokenizer"]),
    save_classifier: bool = typer.Option(_D.save_classifier, help=_RUN["save_classifier"]),
    max_malformed_fraction: float = typer.Option(
        _D.max_malformed_fraction, help=_RUN["max_malformed_fraction"]
    ),
    epochs: float = typer.Option(_F.epochs, help=_FT["epochs"]),
    lr: float = typer.Option(_F.lr, help=_FT["lr"]),
    batch_size: int = typer.Option(_F.batch_size, help=_FT["batch_size"]),
    max_length: int = typer.Option(_F.max_length, help=_FT["max_length"]),
    warmup_steps: int = typer.Option(_F.warmup_steps, help=_FT["warmup_steps"]),
    weight_decay: float = typer.Option(_F.weight_decay, help=_FT["weight_decay"]),
    eval_steps: int = typer.Option(_F.eval_steps, help=_FT["eval_steps"]),
    eval_batch_size: int = typer.Option(_F.eval_batch_size, help=_FT["eval_batch_size"]),
    seed: int = typer.Option(_F.seed, help=_FT["seed"]),
    precision: str = typer.Option(_F.precision, help=_FT["precision"]),
    device: str = typer.Option(_F.device, help=_FT["device"]),
) -> None:
    """Zero-shot cross-lingual XNLI: fine-tune on English, select on English dev, test 15 languages.

    Writes xnli.json, xnli.md (beside the published mDeBERTa-v3-base and XLM-R base rows),
    xnli.png and the selected classifier to --output. Sources: hub:NAME, xnli-tsv:PATH,
    multinli:PATH, mt-tsv:PATH, disk:PATH, or a recognisable path (docs/xnli.md).

    Example: mdeberta eval xnli --model runs/base/hf/discriminator --output xnli/base
    """
    options = dict(locals())  # every option above, by name
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    _run(options)  # bad input raises a ValueError that mdeberta.cli.main prints as one line


def _run(options: dict) -> None:
    import dataclasses

    from mdeberta.eval.xnli import run_xnli

    recipe = {f.name for f in dataclasses.fields(FinetuneConfig)}
    finetune = FinetuneConfig(**{k: v for k, v in options.items() if k in recipe})
    run = {k: v for k, v in options.items() if k not in recipe}
    cfg = XnliConfig(**run, finetune=finetune)
    results = run_xnli(cfg)
    typer.echo(f"average accuracy {100 * results['average']:.2f}% -> {cfg.output}/xnli.md")


_RET = field_docs(RetrievalConfig)
_R = RetrievalConfig(model="-", data="-", output="-")


@app.command("retrieval")
def retrieval(
    model: str = typer.Option(..., help=_RET["model"]),
    data: str = typer.Option(..., help=_RET["data"]),
    output: str = typer.Option(..., help=_RET["output"]),
    languages: str = typer.Option(_R.languages, help=_RET["languages"]),
    layer: int = typer.Option(None, help=_RET["layer"]),
    all_layers: bool = typer.Option(_R.all_layers, "--all-layers", help=_RET["all_layers"]),
    pool_special: bool = typer.Option(_R.pool_special, help=_RET["pool_special"]),
    baselines: bool = typer.Option(_R.baselines, help=_RET["baselines"]),
    seed: int = typer.Option(_R.seed, help=_RET["seed"]),
    max_length: int = typer.Option(_R.max_length, help=_RET["max_length"]),
    batch_size: int = typer.Option(_R.batch_size, help=_RET["batch_size"]),
    backend: str = typer.Option(_R.backend, help=_RET["backend"]),
    tokenizer: str = typer.Option(_R.tokenizer, help=_RET["tokenizer"]),
    precision: str = typer.Option(_R.precision, help=_RET["precision"]),
    device: str = typer.Option(_R.device, help=_RET["device"]),
) -> None:
    """Parallel-sentence retrieval (XTREME's Tatoeba protocol) with baselines beside the model.

    One layer, mean-pooled, cosine, top-1 in both directions; the same architecture at a random
    initialisation and a TF-IDF bag of token ids are scored in the same run. Writes
    retrieval.json, retrieval.md, retrieval.png and the manifest to --output.

    Example: mdeberta eval retrieval --model runs/base/hf/discriminator --data laser:tatoeba/
    --output retrieval/base
    """
    options = dict(locals())
    import logging

    from mdeberta.eval.retrieval import run_retrieval

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = run_retrieval(RetrievalConfig(**options))
    avg = results["average"]
    line = ", ".join(f"{name} {100 * value:.1f}%" for name, value in avg.items())
    typer.echo(f"average top-1: {line} -> {options['output']}/retrieval.md")
