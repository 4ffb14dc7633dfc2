"""TrainConfig: shipped configs load, bad values and keys get clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdeberta.config import ConfigError, field_docs
from mdeberta.train.config import ModelConfig, TrainConfig, load_train_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "train" / "configs").glob("*.toml"))


def test_defaults_follow_the_paper():
    cfg = TrainConfig()
    assert (cfg.sharing, cfg.mask_prob, cfg.mask_policy, cfg.rtd_weight) == (
        "gdes",
        0.15,
        "mask",
        50.0,
    )
    assert (cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps, cfg.weight_decay) == (
        0.9,
        0.98,
        1e-6,
        0.01,
    )
    assert cfg.grad_clip == 1.0 and not cfg.decoupled and cfg.model.generator_layers is None


def test_every_field_is_documented():
    for cls in (TrainConfig, ModelConfig):
        docs = field_docs(cls)
        missing = [f for f in cls.__dataclass_fields__ if not docs.get(f)]
        assert not missing, f"{cls.__name__} fields without a docstring: {missing}"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_train_config(str(path))
    assert cfg.batch_size % cfg.micro_batch_size == 0


def test_expected_configs_exist():
    names = {p.name for p in CONFIGS}
    assert {"tiny.toml", "xsmall.toml", "base.toml", "mdeberta-v3-base.toml"} <= names


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("mask_prob=1.5", "mask_prob must be in (0, 1)"),
        ("sharing=tied", "sharing must be one of"),
        ("mask_policy=random", "mask_policy must be one of"),
        ("steps=0", "steps must be >= 1"),
        ("batch_size=20", "multiple of micro_batch_size"),
        ("checkpoint_interval=15", "multiple of"),
        ("lr=-1", "lr must be > 0"),
        ("model.preset=huge", "model.preset must be one of"),
        ("model.num_attention_heads=5", "model: hidden_size"),
        ("lr_rate=1", "unknown key 'lr_rate'"),
        ("discriminator_lr=1e-4", "needs decoupled=true"),
    ],
)
def test_bad_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_train_config(str(CONFIGS[0].parent / "tiny.toml"), [override])


def test_decoupled_es_refused():
    with pytest.raises(ConfigError, match="decoupled=true cannot be used with sharing='es'"):
        TrainConfig(decoupled=True, sharing="es")


def test_accumulation_must_divide():
    cfg = TrainConfig(batch_size=32, micro_batch_size=8)
    assert cfg.accumulation_steps(2) == 2
    with pytest.raises(ConfigError, match=r"x processes \(3\)"):
        cfg.accumulation_steps(3)


def test_cli_reports_a_bad_config_in_one_line(tmp_path, capsys):
    from mdeberta.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text("mask_prob = 2.0\n")
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "train",
                "--data",
                str(tmp_path),
                "--output",
                str(tmp_path / "r"),
                "--config",
                str(bad),
            ]
        )
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "error:" in err and "mask_prob must be in (0, 1), got 2.0" in err
    assert "Traceback" not in err


def test_a_recipe_warm_up_on_a_shortened_run_is_clipped_not_refused():
    """The README's step 4: xsmall.toml (10000 warm-up steps of 100000) with --set steps=1000."""
    xsmall = str(CONFIGS[0].parent / "xsmall.toml")
    cfg = load_train_config(xsmall, ["steps=1000"])
    assert (cfg.warmup_steps, cfg.warmup()) == (10000, 100)
    assert load_train_config(xsmall).warmup() == 10000  # the recipe's own run: unchanged
    with pytest.raises(ConfigError, match="warmup_steps must be >= 0"):
        load_train_config(None, ["warmup_steps=-1"])


def test_the_schedule_uses_the_clipped_warm_up():
    import torch

    from mdeberta.train.build import build_optimizers

    cfg = load_train_config(None, ["steps=100", "warmup_steps=1000", "model.preset=tiny"])
    model = torch.nn.Linear(2, 2)
    _, (scheduler,) = build_optimizers(cfg, model, fused=False)
    peak = [scheduler.lr_lambdas[0](step) for step in range(100)]
    assert peak.index(max(peak)) == 9  # the 10th step trains at the peak rate, then decay
