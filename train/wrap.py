"""What the loop calls: the RTD model, or its two halves, wrapped in DDP and torch.compile.

    joint       RTDModel (G, sampling, D) in one DDP: one gradient all-reduce over G and D
    decoupled   GeneratorStep (G and sampling) and DiscriminatorStep (D), one DDP each, so G's
                gradients are reduced and stepped before D runs on the updated E_G

With `compile = true` each is compiled after DDP is applied (DDP's buckets then split the graph).
Every micro-batch of a run has the same shapes ([B, L] tokens, [C] masked positions: see
MaskedBatch.positions), so each compiles once per sequence length and never again.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from mdeberta.rtd import RTDModel, discriminator_forward
from mdeberta.train.config import TrainConfig
from mdeberta.train.distributed import Dist


class GeneratorStep(nn.Module):
    """G's half of a decoupled step (RTDModel.generate): MLM sums and the sampled replacements."""

    def __init__(self, model: RTDModel) -> None:
        super().__init__()
        self.generator = model.generator  # what DDP reduces: G's parameters only
        self._model = (model,)  # a tuple, so D's parameters are not registered here

    def forward(self, *inputs):
        return self._model[0].generate(*inputs)


class DiscriminatorStep(nn.Module):
    """D's half of a decoupled step: RTD sums on the replaced input."""

    def __init__(self, model: RTDModel) -> None:
        super().__init__()
        self.discriminator = model.discriminator

    def forward(self, input_ids, attention_mask, positions, sampled):
        return discriminator_forward(
            self.discriminator, input_ids, attention_mask, positions, sampled
        )


def wrap(module: nn.Module, cfg: TrainConfig, dist: Dist) -> nn.Module:
    """`module` in DDP when there are several processes, then compiled when cfg.compile."""
    if dist.enabled:
        ids = [dist.device.index] if dist.device.type == "cuda" else None
        # the only buffer, never_sample, is built identically on every rank: no broadcast needed
        module = DDP(module, device_ids=ids, broadcast_buffers=False)
    if cfg.compile:
        # static shapes: a run has one [B, L], and a new L gets its own graph, not a dynamic one
        module = torch.compile(module, backend=cfg.compile_backend, dynamic=False)
    return module


def no_sync(module: nn.Module, last: bool):
    """DDP all-reduces gradients only on the last micro-batch of a step."""
    ddp = getattr(module, "_orig_mod", module)  # a compiled module wraps the DDP one
    if isinstance(ddp, DDP) and not last:
        return ddp.no_sync()
    return contextlib.nullcontext()
