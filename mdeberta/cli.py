"""The `mdeberta` command line.

Each stage owns a light module holding its typer command functions (their docstrings are the help
text); this table registers them. A module listed here must import only the standard library and
typer at its top, so `mdeberta --help` stays fast: the heavy work is imported inside each command.
"""

from __future__ import annotations

import importlib
import os

import typer

# (command name, "module:attribute"): a function becomes a command, a typer.Typer a command group.
COMMANDS: list[tuple[str, str]] = [
    # one line per command, in the order of the flow
    ("clean", "mdeberta.pipelines.cli:clean"),
    ("build-vocab", "mdeberta.vocab.cli:build_vocab"),
    ("shard", "mdeberta.pipelines.shard_cli:shard"),
    ("train", "mdeberta.train.cli:train"),
    ("export", "mdeberta.train.cli:export"),
    ("plot", "mdeberta.train.cli:plot"),
    ("analyze-embeddings", "mdeberta.train.cli:analyze_embeddings"),
    ("eval", "mdeberta.eval.cli:app"),
    ("demo", "mdeberta.demo:demo"),
]

app = typer.Typer(
    name="mdeberta",
    help=(
        "Pretrain and evaluate multilingual DeBERTa-v3 encoders: "
        "clean → build-vocab → shard → train → export → eval xnli.\n\n"
        "Example: mdeberta <command> --help"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    for name, target in COMMANDS:
        module_name, attribute = target.split(":")
        obj = getattr(importlib.import_module(module_name), attribute)
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=name)
        else:
            settings = getattr(obj, "context_settings", None)
            app.command(name, context_settings=settings)(obj)


def _print_version(value: bool) -> None:
    if value:
        from mdeberta import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Pretrain and evaluate multilingual DeBERTa-v3 encoders."""


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI on `argv` (default: sys.argv). Errors a user can fix (bad input, bad config,
    missing files) print one line naming the problem instead of a traceback; MDEBERTA_TRACEBACK=1
    shows the traceback."""
    try:
        app(args=argv, prog_name="mdeberta")
    # ConfigError, IncompleteArtifactError, ... derive from these; FloatingPointError: a NaN loss
    except (ValueError, OSError, FloatingPointError) as e:
        if os.environ.get("MDEBERTA_TRACEBACK"):
            raise
        typer.echo(f"mdeberta: error: {e}", err=True)
        raise SystemExit(1) from None
