"""Commands built from config dataclasses: options, defaults, help and precedence."""

from dataclasses import dataclass, field
from typing import Literal

import pytest
import typer
from typer.testing import CliRunner

from mdeberta.command import add_command, config_command, config_flags, new_app, run, user_error
from mdeberta.config import ConfigError, check


@dataclass
class Inner:
    lr: float = 0.1
    """Learning rate."""
    layers: list[int] = field(default_factory=lambda: [1, 2])
    """No flag for a list: --set only."""


@dataclass
class Settings:
    steps: int = 10
    """Optimizer steps."""
    warmup: int = 2
    """Warm-up steps, at most steps."""
    mode: Literal["gdes", "es"] = "gdes"
    """Embedding sharing."""
    name: str | None = None
    """Optional run name."""
    fast: bool = True
    """Go fast."""
    inner: Inner = field(default_factory=Inner)
    """Nested settings."""

    def __post_init__(self):
        check(0 <= self.warmup <= self.steps, f"warmup must be in [0, steps={self.steps}]")


def _app(**options):
    seen = {}

    @config_command(Settings, **options)
    def run(out: str = typer.Option(..., help="Where to write."), *, cfg: Settings) -> None:
        """Run it."""
        seen["cfg"], seen["out"] = cfg, out

    app = new_app()
    add_command(app, None, run)
    return app, seen


def _invoke(args, **options):
    app, seen = _app(**options)
    result = CliRunner().invoke(app, ["--out", "o", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return seen["cfg"]


def test_flags_are_the_fields_with_their_defaults_and_docs():
    flags = {f.name: f for f in config_flags(Settings)}
    assert list(flags) == ["steps", "warmup", "mode", "name", "fast"]  # no nested, no list
    assert flags["steps"].default == 10 and flags["steps"].help == "Optimizer steps."
    assert flags["fast"].declaration == "--fast/--no-fast"
    flat = {f.name: f for f in config_flags(Settings, flatten=("inner",))}
    assert flat["lr"].key == "inner.lr" and flat["lr"].help == "Learning rate."
    assert "layers" not in flat
    assert config_flags(Settings, required=("name",))[3].default is ...


def test_defaults_flags_and_set():
    assert _invoke([]) == Settings()
    cfg = _invoke(["--steps", "5", "--mode", "es", "--no-fast", "--name", "x"])
    assert cfg == Settings(steps=5, mode="es", fast=False, name="x")
    cfg = _invoke(["--steps", "5", "--set", "steps=7", "--set", "inner.layers=[3]"])
    assert cfg.steps == 7 and cfg.inner.layers == [3]
    assert _invoke(["--lr", "0.5"], flatten=("inner",)).inner.lr == 0.5


def test_precedence_toml_then_typed_flags_then_set(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('steps = 20\nmode = "es"\nfast = false\n[inner]\nlr = 0.3\n')
    # flags left at their default (mode, fast, lr) do not override the TOML file ...
    cfg = _invoke(["--config", str(toml)], flatten=("inner",))
    assert (cfg.steps, cfg.mode, cfg.fast, cfg.inner.lr) == (20, "es", False, 0.3)
    # ... flags typed on the command line do, even when typed at the field's default ...
    cfg = _invoke(["--config", str(toml), "--mode", "gdes", "--steps", "30"])
    assert (cfg.steps, cfg.mode, cfg.fast) == (30, "gdes", False)
    # ... and --set wins over both
    cfg = _invoke(["--config", str(toml), "--steps", "30", "--set", "steps=40"])
    assert cfg.steps == 40


def test_a_literal_is_a_choice():
    app, _ = _app()
    result = CliRunner().invoke(app, ["--out", "o", "--mode", "shared"])
    assert result.exit_code == 2 and "'shared' is not one of 'gdes', 'es'" in result.output


def test_errors_name_where_the_bad_key_or_value_came_from(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("steps = 4\n")
    with pytest.raises(ConfigError, match=r"^--set stpes=10: unknown key 'stpes'. Did you mean"):
        _invoke(["--config", str(toml), "--set", "stpes=10"])
    with pytest.raises(ConfigError, match=r"^--set steps=x: steps must be an integer"):
        _invoke(["--config", str(toml), "--set", "steps=x"])
    # a value check names the flags and files that gave the values it is about
    with pytest.raises(ConfigError, match=rf"^{toml}, --warmup: warmup must be in \[0, steps=4\]"):
        _invoke(["--config", str(toml), "--warmup", "5"])
    with pytest.raises(ConfigError, match=r"^--set steps=1: warmup must be in \[0, steps=1\]"):
        _invoke(["--set", "steps=1"])
    toml.write_text("stpes = 4\n")
    with pytest.raises(ConfigError, match=rf"^{toml}: unknown key 'stpes'"):
        _invoke(["--config", str(toml)])


def test_a_parameter_may_not_shadow_a_field():
    with pytest.raises(TypeError, match="steps"):

        @config_command(Settings)
        def run(steps: int = typer.Option(1), *, cfg: Settings) -> None:
            """Run it."""


# errors: one line for what a user can fix (command.run)

WORKER_TRACEBACK = """Traceback (most recent call last):
  File "/x/pipelines/read.py", line 231, in _text_documents
    raise BadInputFileError(
mdeberta.pipelines.read.BadInputFileError: /d/fr.txt.xz: truncated or corrupt (EOFError: ...) \
[while running 'Read/ParDo(ReadFile)']
"""


def test_user_errors_become_one_line_and_bugs_stay_tracebacks():
    import mdeberta.pipelines.read  # noqa: F401 - a worker's job module is imported here too

    step = " [while running 'Read/ParDo(ReadFile)']"
    assert user_error(ValueError("/d/x: bad" + step)) == "/d/x: bad"  # Beam's step suffix goes
    assert (
        user_error(RuntimeError(WORKER_TRACEBACK))
        == "/d/fr.txt.xz: truncated or corrupt (EOFError: ...)"
    )
    last = WORKER_TRACEBACK.strip().splitlines()[-1]
    sentencepiece = WORKER_TRACEBACK.replace(last, "RuntimeError: Internal: ParseFromArray")
    assert user_error(RuntimeError(sentencepiece)) is None  # not ours to explain: a traceback
    lzma = WORKER_TRACEBACK.replace(last, "_lzma.LZMAError: Input format not supported")
    assert user_error(RuntimeError(lzma)) is None
    assert user_error(KeyError("steps")) is None


def test_a_missing_extra_says_which_to_install():
    gcsfs = ImportError("gs://b/clean: Please install gcsfs to access Google Storage")
    assert user_error(gcsfs).endswith('(it comes with the gcp extra: pip install -e ".[gcp]")')
    dataflow = ImportError(
        "Google Cloud Dataflow runner not available, please install apache_beam[gcp]"
    )
    assert "gcp extra" in user_error(dataflow)
    assert "gcp extra" in user_error(
        ModuleNotFoundError("No module named 'google.auth'", name="google.auth")
    )
    assert user_error(ModuleNotFoundError("No module named 'numpyy'", name="numpyy")) is None


def test_run_prints_one_line_or_with_mdeberta_traceback_raises(logging_state, capsys, monkeypatch):
    app = new_app()

    @app.command()
    def fail() -> None:
        """Fail."""
        raise FileNotFoundError("/d/corpus: no manifest.json")

    monkeypatch.delenv("MDEBERTA_TRACEBACK", raising=False)
    with pytest.raises(SystemExit) as exit_:
        run(app, [], "mdeberta")
    assert exit_.value.code == 1
    assert capsys.readouterr().err == "mdeberta: error: /d/corpus: no manifest.json\n"
    monkeypatch.setenv("MDEBERTA_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        run(app, [], "mdeberta")
