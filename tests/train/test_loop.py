"""The loop in process: the loss falls, accumulation, decoupled mode, divergence, bad inputs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mdeberta.shards import VocabMismatchError, write_token_shards
from mdeberta.train.build import (
    build_model,
    build_optimizers,
    model_configs,
    param_groups,
    warmup_linear,
)
from mdeberta.train.checkpoint import list_checkpoints
from mdeberta.train.config import load_train_config
from mdeberta.train.loop import TrainingDiverged
from mdeberta.train.metrics import read_metrics
from tests.train.helpers import (
    NO_DROPOUT,
    SEQ_LEN,
    deterministic,
    make_trainer,
    make_vocab,
    pack,
    sample_lines,
    train_here,
)


def test_loss_falls_with_a_tiny_model(reference_run):
    rows = read_metrics(reference_run)  # 24 steps of tiny.toml on the sample corpus, seed 0
    mean = lambda key, part: sum(r[key] for r in part) / len(part)  # noqa: E731
    first, last = rows[:1], rows[-3:]
    assert [r["step"] for r in rows] == list(range(2, 25, 2))
    assert mean("mlm_loss", last) < mean("mlm_loss", first) - 0.25
    assert mean("rtd_loss", last) < mean("rtd_loss", first) - 0.15
    assert rows[-1]["tokens"] == 24 * 16 * SEQ_LEN  # packed rows: every token counts
    assert 0 < mean("replaced_fraction", last) < 0.15


def test_accumulation_equals_one_big_batch(shards, tmp_path):
    accumulated = train_here(shards, str(tmp_path / "a"), "micro_batch_size=4", *NO_DROPOUT)
    whole = train_here(shards, str(tmp_path / "b"), "micro_batch_size=16", *NO_DROPOUT)
    for a, b in zip(deterministic(accumulated), deterministic(whole), strict=True):
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key


def test_decoupled_mode_trains_two_optimizers(shards, tmp_path):
    rows = train_here(shards, str(tmp_path / "run"), "decoupled=true", "discriminator_lr=1e-3")
    assert {"grad_norm_generator", "grad_norm_discriminator"} <= set(rows[-1])
    assert "grad_norm" not in rows[-1]


def tiny_model_and_optimizers(*overrides):
    cfg = load_train_config(str(Path(__file__).parents[2] / "train/configs/tiny.toml"), overrides)
    vocab = {"vocab_size": 90, "special_ids": {"pad": 0, "cls": 1, "sep": 2, "unk": 3, "mask": 89}}
    model = build_model(cfg, *model_configs(cfg, vocab, SEQ_LEN), vocab)
    return model, build_optimizers(cfg, model)[0]


def test_decoupled_optimizers_split_E_G_and_E_delta():
    model, (g_opt, d_opt) = tiny_model_and_optimizers("decoupled=true")
    owned = lambda opt: {id(p) for group in opt.param_groups for p in group["params"]}  # noqa: E731
    assert id(model.E_G) in owned(g_opt) and id(model.E_G) not in owned(d_opt)
    assert id(model.E_delta) in owned(d_opt) and id(model.E_delta) not in owned(g_opt)
    assert model.generator.config.num_hidden_layers == 1  # half of tiny's 2 layers


def test_no_weight_decay_on_biases_and_layernorms():
    model, (opt,) = tiny_model_and_optimizers()
    decay, no_decay = opt.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(
        names[id(p)].endswith("bias") or "LayerNorm" in names[id(p)] for p in no_decay["params"]
    )
    assert id(model.E_delta) in {id(p) for p in decay["params"]}  # as the official code
    assert len(param_groups(model, 0.01)[1]["params"]) == len(no_decay["params"])


def test_warmup_then_linear_decay():
    f = warmup_linear(4, 12)
    assert [round(f(s), 4) for s in range(12)] == [
        0.25,
        0.5,
        0.75,
        1.0,
        1.0,
        0.875,
        0.75,
        0.625,
        0.5,
        0.375,
        0.25,
        0.125,
    ]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(shards, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as info:
        train_here(
            shards, str(run), "lr=1e30", "warmup_steps=0", "log_interval=1", "checkpoint_interval=1"
        )
    message = str(info.value)
    assert "not finite" in message and "step-00000001" in message
    assert [step for step, _ in list_checkpoints(str(run))] == [1]
    assert not (run / "manifest.json").exists()


def test_shards_of_another_vocabulary_are_refused(shards, vocab, tmp_path):
    lines = sample_lines()
    other = make_vocab(tmp_path / "other-vocab", lines[::2], vocab_size=280)
    assert other["sha256"] != vocab["sha256"]
    with pytest.raises(VocabMismatchError, match="vocabulary mismatch"):
        train_here(shards, str(tmp_path / "a"), vocab=other["url"])
    other_shards = tmp_path / "other-shards"
    write_token_shards(
        str(other_shards), pack(tmp_path / "other-vocab", lines[:400]), seq_len=SEQ_LEN, vocab=other
    )
    run = tmp_path / "run"
    train_here(shards, str(run), "steps=4")
    with pytest.raises(VocabMismatchError, match="vocabulary mismatch"):
        train_here(str(other_shards), str(run), "steps=8")  # resuming on other shards


def test_resume_refuses_changed_model_settings(shards, tmp_path):
    from mdeberta.config import ConfigError

    run = str(tmp_path / "run")
    train_here(shards, run, "steps=4")
    with pytest.raises(ConfigError, match="sharing: 'gdes' -> 'nes'"):
        train_here(shards, run, "steps=8", "sharing=nes")
    rows = train_here(shards, run, "steps=8", "lr=1e-3")  # lr and steps may change
    assert rows[-1]["step"] == 8 and rows[-1]["lr"] < 1e-3
    assert torch.isfinite(torch.tensor(rows[-1]["loss"]))


def test_loader_workers_do_not_change_the_batches(shards, tmp_path):
    settings = ("steps=4", "checkpoint_interval=4", *NO_DROPOUT)
    plain = train_here(shards, str(tmp_path / "a"), *settings)
    workers = train_here(shards, str(tmp_path / "b"), "num_workers=2", *settings)
    assert deterministic(plain) == deterministic(workers)


class DeviceReads(TorchDispatchMode):
    """Counts what makes the host wait for the device on CUDA: reading a value (item, bool, int,
    float all reach _local_scalar_dense), ops whose output size depends on values (nonzero,
    boolean indexing, masked_select, unique), and copies to the host (tolist, numpy, cpu; on a
    CPU tensor these read memory without dispatching, so they are patched)."""

    SYNCING = {
        torch.ops.aten._local_scalar_dense, torch.ops.aten.nonzero, torch.ops.aten.masked_select,
        torch.ops.aten.is_nonzero, torch.ops.aten.equal, torch.ops.aten._unique2,
        torch.ops.aten.unique_consecutive, torch.ops.aten.unique_dim, torch.ops.aten.bincount,
    }  # fmt: skip

    def __init__(self, monkeypatch) -> None:
        super().__init__()
        self.seen: list[str] = []
        for name in ("tolist", "numpy", "cpu"):
            original = getattr(torch.Tensor, name)

            def counted(t, *args, _name=name, _original=original, **kwargs):
                self.seen.append(_name)
                return _original(t, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counted)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        boolean_index = func.overloadpacket in (torch.ops.aten.index, torch.ops.aten.index_put_)
        if boolean_index:
            boolean_index = any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1]
            )
        if func.overloadpacket in self.SYNCING or boolean_index:
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("mode", ["joint", "decoupled"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_a_step_that_neither_logs_nor_saves_never_waits_for_the_device(
    shards, tmp_path, monkeypatch, mode, precision
):
    # fused AdamW, as on CUDA: it takes fp16's overflow flag as a tensor (other AdamWs read it)
    trainer, logger = make_trainer(
        shards,
        str(tmp_path / "run"),
        f"precision={precision}",
        f"decoupled={mode == 'decoupled'}",
        "log_interval=4",
        "checkpoint_interval=4",
        fused=True,
    )
    stream = trainer.batches()
    trainer.model.train()
    trainer.advance(trainer.next_step_batches(stream), logger)  # step 1 creates optimizer states
    batches = trainer.next_step_batches(stream)
    with DeviceReads(monkeypatch) as reads:
        trainer.advance(batches, logger)  # step 2
    assert reads.seen == [] and trainer.step == 2
    trainer.advance(trainer.next_step_batches(stream), logger)
    batches = trainer.next_step_batches(stream)
    with DeviceReads(monkeypatch) as reads:
        trainer.advance(batches, logger)  # step 4 logs and saves: the counter sees it read
    assert reads.seen and "tolist" in reads.seen
    assert [row["step"] for row in read_metrics(str(tmp_path / "run"))] == [4]


@pytest.mark.parametrize("mode", ["joint", "decoupled"])
def test_fp16_run_is_finite_and_counts_the_steps_the_scaler_skips(shards, tmp_path, mode):
    rows = train_here(
        shards, str(tmp_path / "run"), "precision=fp16", f"decoupled={mode == 'decoupled'}"
    )  # 12 steps, a line every 2
    norms = ["grad_norm"] if mode == "joint" else ["grad_norm_generator", "grad_norm_discriminator"]
    for row in rows:
        assert all(math.isfinite(v) for v in row.values())  # skipped steps' norms left out
        assert row["skipped_steps"] in (0, 1, 2) and row["loss_scale"] <= 2.0**16
    # λ = 50 makes D's fp16 weight gradients overflow at the initial scale 2^16: the scaler halves
    # it (skipping those steps) until they fit, then every step is applied
    assert sum(row["skipped_steps"] for row in rows) <= 5
    assert all(row["skipped_steps"] == 0 and set(norms) <= set(row) for row in rows[-3:])
    assert rows[-1]["loss_scale"] < 2.0**16
    assert rows[-1]["rtd_loss"] < rows[0]["rtd_loss"] - 0.03
