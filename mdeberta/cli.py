"""The `mdeberta` command line: every stage's commands under one name.

Each stage owns a light module holding its typer command functions (their docstrings are the help
text, their options come from the stage's config dataclass: mdeberta/command.py); this table
registers them. Those modules import only typer and the light config modules at their top, so
`mdeberta --help` stays fast: the heavy work is imported inside each command.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import typer

from mdeberta import __version__, demo
from mdeberta.command import add_command, new_app, run
from mdeberta.eval import cli as eval_cli
from mdeberta.pipelines import cli as pipelines_cli
from mdeberta.train import cli as train_cli
from mdeberta.vocab import cli as vocab_cli

# (command name, command): a function becomes a command, a typer.Typer a command group.
COMMANDS: list[tuple[str, Callable | typer.Typer]] = [
    # one line per command, in the order of the flow
    ("clean", pipelines_cli.clean),
    ("build-vocab", vocab_cli.build_vocab),
    ("extend-vocab", vocab_cli.extend_vocab),
    ("shard", pipelines_cli.shard),
    ("train", train_cli.train),
    ("export", train_cli.export),
    ("plot", train_cli.plot),
    ("analyze-embeddings", train_cli.analyze_embeddings),
    ("eval", eval_cli.app),
    ("demo", demo.demo),
]

app = new_app(
    name="mdeberta",
    help=(
        "Pretrain and evaluate multilingual DeBERTa-v3 encoders: "
        "clean → build-vocab → shard → train → export → eval xnli.\n\n"
        "Example: mdeberta <command> --help"
    ),
    no_args_is_help=True,
)
for name, command in COMMANDS:
    if isinstance(command, typer.Typer):
        app.add_typer(command, name=name)
    else:
        add_command(app, name, command)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Pretrain and evaluate multilingual DeBERTa-v3 encoders."""


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI on `argv` (default: sys.argv); a user error is one line (command.run)."""
    run(app, argv, "mdeberta")
