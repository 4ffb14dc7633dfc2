import dataclasses
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from mdeberta.cli import COMMANDS, app

HEAVY = ("torch", "apache_beam", "transformers", "sentencepiece", "datasets", "matplotlib")


def test_cli_imports_nothing_heavy():
    """`mdeberta --help` must stay fast: building the CLI may not import the heavy libraries."""
    code = f"import sys, mdeberta.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_lists_every_registered_command():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name, _ in COMMANDS:
        assert name in result.output


def _leaf_commands():
    """Every command path, descending into groups such as `eval xnli`."""
    root = typer.main.get_command(app)

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if not subs:
            yield path
            return
        for name, sub in subs.items():
            yield from walk(sub, [*path, name])

    return list(walk(root, []))


def _command(path):
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


LEAVES = _leaf_commands()
# Commands whose parameters are all operands (directories to read and write): nothing to default.
WITHOUT_CONFIG = {("export",), ("plot",), ("analyze-embeddings",)}


def _field_names(cls):
    """Every field name of a config, nested ones included."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        yield f.name
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _field_names(hints[f.name])


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_options_come_from_the_config_dataclass(path):
    """Defaults and help are written once, in the config dataclass: every option of a command is
    a field (the field's own default and docstring), --config/--set, or an operand of the command
    that has no default to restate (required, or None for "not given")."""
    cmd = _command(path)
    cls = getattr(cmd.callback, "config_class", None)
    assert (cls is None) == (tuple(path) in WITHOUT_CONFIG), f"{path}: --config/--set missing"
    flags = {f.name: f for f in cmd.callback.config_flags} if cls else {}
    fields = set(_field_names(cls)) if cls else set()
    for param in cmd.params:
        if param.name == "help":
            continue
        if param.name in flags:
            flag = flags[param.name]
            assert param.help == flag.help != "", f"{flag.option}: not the field's docstring"
            assert flag.option in param.opts
            if flag.default is ...:
                assert param.required
            else:
                assert param.default == flag.default and not param.required, flag.option
        elif param.name in ("config", "set_"):
            assert cls is not None and cls.__name__ in param.help
        elif param.name == "verbose":  # every config command's, like --config and --set
            assert cls is not None and param.default is False
        else:
            assert param.name not in fields, f"{param.name} restates a {cls.__name__} field"
            assert param.required or param.default in (None, [], ()), (
                f"`mdeberta {' '.join(path)}` restates a default: {param.name}={param.default!r}"
            )


WIDTH = 80


@pytest.mark.parametrize("path", [[], ["eval"], *LEAVES], ids=lambda p: " ".join(p) or "root")
def test_help_fits_80_columns_with_whole_option_names_and_paragraphs(path):
    """At 80 columns no option name is cut (`--sequences-per-sh…`), no line is longer, and each
    docstring paragraph is rewrapped whole: no short line in the middle of a paragraph."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    out = result.output
    for param in _command(path).params:
        for name in [*param.opts, *param.secondary_opts]:
            if name.startswith("--"):
                assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", out), name
    lines = out.splitlines()
    assert max(map(len, lines)) <= WIDTH, max(lines, key=len)
    heading = next(i for i, line in enumerate(lines) if line in ("Options:", "Arguments:"))
    description = "\n".join(lines[1:heading]).split("\n\n")
    for paragraph in (p.splitlines() for p in description if p.strip()):
        if any(not line.startswith("  ") or line.startswith("   ") for line in paragraph):
            continue  # a block kept as written (\b): examples, option lists
        for line, following in zip(paragraph, paragraph[1:], strict=False):
            first = re.match(r"\S+?-(?=\w)|\S+", following.strip()).group()
            assert len(line) + 1 + len(first) > WIDTH - 2, f"ragged: {line!r} / {following!r}"


TINY = str(Path(__file__).parents[2] / "train" / "configs" / "tiny.toml")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", TINY, "--set", "stpes=10"], "--set stpes=10: unknown key 'stpes'"),
        (["--set", "model.layers=2"], "--set model.layers=2: unknown key 'model.layers'"),
        (  # a typed flag sits between the TOML file (batch_size = 16) and --set
            ["--config", TINY, "--micro-batch-size", "5"],
            f"{TINY}, --micro-batch-size: batch_size (16) must be a multiple of micro_batch_size",
        ),
        (["--config", "BAD"], "BAD.toml: unknown key 'stpes'"),
    ],
    ids=["set-key", "set-nested-key", "flag-over-toml", "toml-key"],
)
def test_config_errors_name_where_the_bad_key_came_from(tmp_path, args, message):
    bad = tmp_path / "BAD.toml"
    bad.write_text("stpes = 10\n")
    args = [str(bad) if a == "BAD" else a for a in args]
    message = message.replace("BAD.toml", str(bad))
    cmd = [sys.executable, "-m", "mdeberta", "train", "--data", str(tmp_path), "--output"]
    out = subprocess.run([*cmd, str(tmp_path / "run"), *args], capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith(f"mdeberta: error: {message}"), out.stderr
    assert len(out.stderr.splitlines()) == 1


@pytest.mark.parametrize("path", _leaf_commands(), ids=lambda p: " ".join(p) or "root")
def test_every_command_has_help_with_an_example(path):
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`mdeberta {' '.join(path)} --help` shows no example"


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip()


def test_user_errors_are_one_line_not_a_traceback(tmp_path):
    missing = tmp_path / "no-such-corpus"
    cmd = [sys.executable, "-m", "mdeberta", "shard", "--corpus", str(missing)]
    cmd += ["--vocab", str(tmp_path), "--output", str(tmp_path / "out")]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 1
    assert f"mdeberta: error: {missing}" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("args", [["--help"], ["clean", "--help"], ["shard", "--help"]])
def test_help_prints_no_warning(args):
    out = subprocess.run([sys.executable, "-m", "mdeberta", *args], capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr == ""
