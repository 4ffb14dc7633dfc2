"""Mixed precision by name, shared by training, fine-tuning and inference.

    fp32   no autocast
    bf16   autocast to bfloat16: fp32's range, so no loss scaling
    fp16   autocast to float16 with dynamic loss scaling (torch.amp.GradScaler) when training:
           the loss is multiplied by a scale before backward, gradients are unscaled before
           clipping, a step whose gradients overflowed is skipped and the scale halved; the scale
           doubles after 2000 steps without overflow
    auto   bf16 on CUDA, fp32 elsewhere

Weights, optimizer states and the losses stay fp32 in every mode. CPU autocast supports bf16 and
fp16 too (slow there; useful in tests).
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """bf16, fp16 or fp32: what `precision` means on `device` (auto: bf16 on CUDA, else fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if torch.device(device).type == "cuda" else "fp32"
    return precision


def autocast(precision: str, device: torch.device | str):
    """The autocast context for `precision` on `device` (a null context for fp32)."""
    resolved = resolve_precision(precision, device)
    if resolved == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=DTYPES[resolved])


def grad_scaler(precision: str, device: torch.device | str) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 training on `device`; None where no loss scaling is needed."""
    if resolve_precision(precision, device) != "fp16":
        return None
    return torch.amp.GradScaler(torch.device(device).type)
