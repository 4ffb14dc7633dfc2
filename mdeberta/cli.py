"""The `mdeberta` command line.

Each stage owns a light module holding its typer command functions (their docstrings are the help
text); this table registers them. A module listed here must import only the standard library and
typer at its top, so `mdeberta --help` stays fast: the heavy work is imported inside each command.
"""

from __future__ import annotations

import importlib

import typer

# (command name, "module:attribute"): a function becomes a command, a typer.Typer a command group.
COMMANDS: list[tuple[str, str]] = [
    # one line per command, in the order of the flow
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


def main() -> None:
    app()
