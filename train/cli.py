"""Typer commands of the training stage: train, export, plot, analyze-embeddings.

Light at import (typer only): torch and the trainer are imported inside each command.
"""

from __future__ import annotations

import dataclasses

import typer


def train(
    data: str = typer.Option(..., "--data", help="Token-shards directory (local path or URL)."),
    output: str = typer.Option(
        ..., "--output", help="Run directory; resumed if it has a checkpoint."
    ),
    config: str | None = typer.Option(None, "--config", help="TOML config (train/configs/*.toml)."),
    set_: list[str] = typer.Option(  # noqa: B008
        [], "--set", help="Override a config key: key=value (repeatable)."
    ),
    init_from: str | None = typer.Option(
        None, "--init-from", help="Continue pretraining from a Hugging Face model dir."
    ),
    vocab: str | None = typer.Option(
        None, "--vocab", help="Refuse the shards unless they were made with this vocabulary dir."
    ),
) -> None:
    """Pretrain a generator and a discriminator with replaced token detection (DeBERTa-v3, GDES).

    Runs on one process or under torchrun (one process per GPU; gloo on CPU). Writes run.json,
    metrics.jsonl, checkpoints/, curves.png and hf/{discriminator,generator}.

    Example: mdeberta train --data shards/ --output runs/tiny --config train/configs/tiny.toml
    --set steps=200
    """
    from mdeberta.train.config import load_train_config
    from mdeberta.train.run import train as run_training

    cfg = load_train_config(config, list(set_))
    if init_from:
        cfg = dataclasses.replace(cfg, init_from=init_from)
    run_training(data, output, cfg, vocab=vocab)


def export(
    run_dir: str = typer.Argument(..., help="Run directory with a checkpoint."),
    output: str = typer.Option(..., "--output", help="Where discriminator/ and generator/ go."),
    checkpoint: str | None = typer.Option(
        None, "--checkpoint", help="A checkpoint dir (default: the run's latest)."
    ),
    tokenizer: str | None = typer.Option(
        None, "--tokenizer", help="Vocabulary dir (default: the one in the shards' manifest)."
    ),
) -> None:
    """Export a run's checkpoint as Hugging Face discriminator and generator directories.

    The discriminator gets E_G + E_delta merged (loads with AutoModel), the generator loads with
    AutoModelForMaskedLM; the tokenizer files of the shards' vocabulary go beside both.

    Example: mdeberta export runs/tiny --output models/tiny
    """
    from mdeberta.train.export import export_run

    written = export_run(run_dir, output, checkpoint=checkpoint, tokenizer=tokenizer)
    typer.echo(f"step {written['step']}: {written['discriminator']}  {written['generator']}")


def plot(
    run_dir: str = typer.Argument(..., help="Run directory with metrics.jsonl."),
    output: str | None = typer.Option(None, "--output", help="PNG path (default RUN/curves.png)."),
) -> None:
    """Plot a run's loss, accuracy and learning-rate curves from metrics.jsonl.

    Example: mdeberta plot runs/tiny
    """
    from mdeberta.train.metrics import plot_curves

    typer.echo(plot_curves(run_dir, output))


def analyze_embeddings(
    runs: list[str] = typer.Argument(..., help="Run directories (or checkpoint dirs)."),  # noqa: B008
    json_out: str | None = typer.Option(None, "--json", help="Also write the results as JSON."),
) -> None:
    """Average pairwise cosine similarity of each run's E_G and E_D word embeddings.

    The DeBERTa-v3 paper's figure 2: with ES one table serves both models; GDES lets E_D differ.

    Example: mdeberta analyze-embeddings runs/gdes runs/es runs/nes
    """
    from mdeberta.train.analyze import analyze_runs, format_table

    rows = analyze_runs(runs)
    typer.echo(format_table(rows))
    if json_out:
        from mdeberta import io

        io.write_json(json_out, rows)
