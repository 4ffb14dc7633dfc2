from dataclasses import dataclass, field
from typing import Literal

import pytest

from mdeberta.config import (
    ConfigError,
    check,
    config_to_dict,
    describe,
    field_docs,
    load_config,
)


@dataclass
class Optim:
    lr: float = 1e-3
    """Peak learning rate."""
    betas: tuple[float, ...] = (0.9, 0.98)
    """Adam betas."""

    def __post_init__(self):
        check(0 < self.lr < 1, f"lr must be in (0, 1), got {self.lr}")


@dataclass
class Run:
    steps: int = 10
    """Optimizer steps."""
    mode: Literal["gdes", "es", "nes"] = "gdes"
    """Embedding sharing."""
    name: str | None = None
    """Optional run name."""
    bf16: bool = False
    """Autocast to bf16."""
    optim: Optim = field(default_factory=Optim)
    """Optimizer settings."""


def test_field_docs_and_describe():
    assert field_docs(Run)["steps"] == "Optimizer steps."
    keys = [row[0] for row in describe(Run)]
    assert keys == ["steps", "mode", "name", "bf16", "optim.lr", "optim.betas"]


def test_toml_then_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('steps = 5\nmode = "es"\n[optim]\nlr = 0.01\n')
    cfg = load_config(
        Run, str(path), ["optim.lr=0.002", "name=demo", "bf16=true", "optim.betas=[0.8, 0.9]"]
    )
    assert cfg.steps == 5 and cfg.mode == "es" and cfg.name == "demo" and cfg.bf16
    assert cfg.optim.lr == 0.002 and cfg.optim.betas == (0.8, 0.9)
    assert config_to_dict(cfg)["optim"]["lr"] == 0.002


def test_section(tmp_path):
    path = tmp_path / "all.toml"
    path.write_text("[train]\nsteps = 7\n")
    assert load_config(Run, str(path), section="train").steps == 7


def test_unknown_key_names_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'stepz'.*Did you mean steps.*Valid keys"):
        load_config(Run, overrides=["stepz=3"])
    with pytest.raises(ConfigError, match=r"optim\.momentum.*Valid keys: lr, betas"):
        load_config(Run, overrides=["optim.momentum=3"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("steps=abc", "steps must be an integer"),
        ("steps=1.5", "steps must be an integer"),
        ("mode=shared", "must be one of 'gdes', 'es', 'nes'"),
        ("optim.lr=2", r"lr must be in \(0, 1\), got 2"),
        ("bf16=maybe", "bf16 must be true or false"),
        ("steps", "key=value"),
    ],
)
def test_bad_values(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Run, overrides=[override])


def test_bad_toml_names_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("steps = = 3")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_config(Run, str(path))


def test_flags_sit_between_the_toml_file_and_set(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('steps = 5\nmode = "es"\n')
    flags = [("steps", 6, "--steps"), ("optim.lr", 0.5, "--lr")]
    cfg = load_config(Run, str(path), flags=flags)
    assert (cfg.steps, cfg.mode, cfg.optim.lr) == (6, "es", 0.5)
    assert load_config(Run, str(path), ["steps=7"], flags=flags).steps == 7


def test_errors_name_the_set_item_or_flag_or_file_that_gave_the_bad_key(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("steps = 5\n")
    with pytest.raises(ConfigError, match=r"^--set stpes=10: unknown key 'stpes'"):
        load_config(Run, str(path), ["stpes=10"])
    with pytest.raises(ConfigError, match=r"^--set optim\.lr=x: optim\.lr must be a number"):
        load_config(Run, str(path), ["optim.lr=x"])
    with pytest.raises(ConfigError, match=r"^--lr: lr must be in \(0, 1\), got 2"):
        load_config(Run, str(path), flags=[("optim.lr", 2.0, "--lr")])
    with pytest.raises(ConfigError, match=r"^--set steps: not of the form key=value"):
        load_config(Run, str(path), ["steps"])
    path.write_text("stpes = 5\n[optim]\nlr = 3\n")
    with pytest.raises(ConfigError, match=rf"^{path}: unknown key 'stpes'"):
        load_config(Run, str(path))
    path.write_text("[optim]\nlr = 3\n")
    with pytest.raises(ConfigError, match=rf"^{path}: lr must be in"):
        load_config(Run, str(path))
