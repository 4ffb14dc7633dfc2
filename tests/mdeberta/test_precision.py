"""Precision by name: what each means on CPU and CUDA, and which one gets a loss scaler."""

from __future__ import annotations

import pytest
import torch

from mdeberta.precision import autocast, grad_scaler, resolve_precision


def test_auto_is_bf16_on_cuda_and_fp32_on_cpu():
    assert resolve_precision("auto", "cuda") == "bf16"
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("fp16", "cpu") == "fp16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", "cpu")


@pytest.mark.parametrize(
    "precision,dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)]
)
def test_autocast_runs_matmuls_in_the_named_dtype(precision, dtype):
    a, b = torch.randn(4, 8), torch.randn(8, 2)
    with autocast(precision, "cpu"):
        assert (a @ b).dtype == dtype


def test_only_fp16_scales_the_loss():
    assert grad_scaler("fp32", "cpu") is None and grad_scaler("bf16", "cpu") is None
    assert grad_scaler("auto", "cpu") is None
    scaler = grad_scaler("fp16", "cpu")
    assert scaler.is_enabled() and scaler.get_scale() == 2.0**16
