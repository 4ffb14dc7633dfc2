import subprocess
import sys

import pytest
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
    import typer.main

    root = typer.main.get_command(app)

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if not subs:
            yield path
            return
        for name, sub in subs.items():
            yield from walk(sub, [*path, name])

    return list(walk(root, []))


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
