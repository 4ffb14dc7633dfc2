"""benchmarks/gpu.py --smoke: every section of the GPU report runs on tiny shapes on the CPU."""

from __future__ import annotations

import json

import torch

from benchmarks.gpu import flops_per_token, main
from mdeberta.model import DebertaConfig


def test_smoke_report_has_every_section_and_no_error(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = main(["--smoke", "--output", str(tmp_path / "gpu.json")])
    finally:
        torch.set_num_threads(threads)
    assert json.loads((tmp_path / "gpu.json").read_text()) == report
    assert not [name for name, part in report.items() if isinstance(part, dict) and "error" in part]
    assert all(report["parity"][p]["within"] for p in ("fp32", "bf16", "fp16"))
    resume = report["resume"]
    assert resume["killed_before_the_end"] and resume["identical_metrics"]
    assert resume["identical_final_weights"]
    assert set(report["xnli"]["accuracy"]) == {"en", "de", "sw"}
    rows = report["speed"]["rows"]
    measured = {(r["model"], r["precision"]) for r in rows if "tokens_per_s" in r}
    assert {(m, p) for m in ("ours", "hf") for p in ("bf16", "fp16")} <= measured
    assert all("error" not in r for r in rows)


def test_flops_per_token_match_the_readme():
    base, xsmall = DebertaConfig.preset("base"), DebertaConfig.preset("xsmall")
    half = lambda cfg: cfg.replace(num_hidden_layers=6)  # noqa: E731
    # README.md: about 1.1 GFLOP per token for base with a 250K vocabulary, 0.36 for xsmall
    assert abs(flops_per_token(base, half(base), 512) / 1e9 - 1.1) < 0.05
    assert abs(flops_per_token(xsmall, half(xsmall), 512) / 1e9 - 0.36) < 0.02
