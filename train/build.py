"""Building a run's pieces from its config: model configs, the RTD model, optimizers, schedules."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mdeberta.config import check
from mdeberta.model import DebertaConfig, DebertaForMaskedLM, DebertaForRTD
from mdeberta.rtd import RTDModel
from mdeberta.train.config import TrainConfig

RUN_INFO = "run.json"  # in the run directory: the resolved config and the models' configs


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def model_configs(
    cfg: TrainConfig, vocab: dict[str, Any], seq_len: int
) -> tuple[DebertaConfig, DebertaConfig]:
    """(discriminator, generator) configs: the preset with overrides, the shards' vocabulary
    (rows rounded up to model.vocab_multiple) and a generator of half the depth by default."""
    m = cfg.model
    disc = DebertaConfig.preset(
        m.preset,
        **m.overrides(),
        vocab_size=round_up(int(vocab["vocab_size"]), m.vocab_multiple),
        pad_token_id=int(vocab["special_ids"]["pad"]),
    )
    check(
        seq_len <= disc.max_position_embeddings,
        f"the shards' seq_len ({seq_len}) exceeds model max_position_embeddings "
        f"({disc.max_position_embeddings}); set model.max_position_embeddings",
    )
    layers = m.generator_layers or max(1, disc.num_hidden_layers // 2)
    return disc, disc.replace(num_hidden_layers=layers)


def load_model_configs(info: dict[str, Any]) -> tuple[DebertaConfig, DebertaConfig]:
    """(discriminator, generator) configs as a run recorded them in run.json."""
    return DebertaConfig(**info["discriminator"]), DebertaConfig(**info["generator"])


def build_model(
    cfg: TrainConfig, disc_config: DebertaConfig, gen_config: DebertaConfig, vocab: dict[str, Any]
) -> RTDModel:
    """A freshly initialised RTD model (seeded by cfg.seed, so every rank builds the same one)."""
    torch.manual_seed(cfg.seed)
    generator = DebertaForMaskedLM(gen_config)
    discriminator = DebertaForRTD(disc_config)
    return RTDModel(
        generator,
        discriminator,
        sharing=cfg.sharing,
        special_ids=sorted(set(vocab["special_ids"].values())),
        vocab_size=int(vocab["vocab_size"]),
    )


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices (embeddings and E_delta included, as officially), none on biases
    and LayerNorm weights."""
    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def warmup_linear(warmup_steps: int, total_steps: int):
    """lr multiplier: linear up to 1 over the warm-up, then linear down to 0 after total_steps.

    LambdaLR passes the number of steps already taken; step s = taken + 1 (counting from 1)
    trains with s / warmup during the warm-up (never with lr 0) and with
    (total - s + 1) / (total - warmup) after it, so the last step still moves the weights.
    """

    def multiplier(step: int) -> float:
        s = step + 1
        if s <= warmup_steps:
            return s / warmup_steps
        return max(0.0, (total_steps - s + 1) / max(1, total_steps - warmup_steps))

    return multiplier


def build_optimizers(
    cfg: TrainConfig, model: RTDModel, fused: bool | None = None
) -> tuple[list, list]:
    """Joint: one AdamW over G and D. Decoupled: one for G, one for D (E_delta is D's).

    fused: one kernel per step for all parameters, which also takes fp16's overflow flag on the
    device; None = when the parameters are on CUDA."""
    if fused is None:
        fused = all(p.is_cuda for p in model.parameters())
    if cfg.decoupled:
        parts = [(model.generator, cfg.lr), (model.discriminator, cfg.discriminator_lr or cfg.lr)]
    else:
        parts = [(model, cfg.lr)]
    optimizers = [
        torch.optim.AdamW(
            param_groups(module, cfg.weight_decay),
            lr=lr,
            betas=(cfg.adam_beta1, cfg.adam_beta2),
            eps=cfg.adam_eps,
            fused=fused,
        )
        for module, lr in parts
    ]
    schedule = warmup_linear(cfg.warmup(), cfg.steps)
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, schedule) for o in optimizers]
    return optimizers, schedulers
