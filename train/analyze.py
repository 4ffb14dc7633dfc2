"""Embedding analysis: average pairwise cosine similarity of E_G and E_D (DeBERTa-v3, figure 2).

With ES, the generator's MLM loss and the discriminator's RTD loss pull one table in opposite
directions (the "tug-of-war"); the paper reports that ES leaves E_G/E_D with a high average
cosine similarity while GDES keeps E_D less collapsed. For unit vectors u_1..u_n,
    mean_{i != j} cos(u_i, u_j) = (|sum_i u_i|^2 - n) / (n (n - 1)),
which costs O(n d) instead of O(n^2 d) for a 250k-row vocabulary.
"""

from __future__ import annotations

from typing import Any

import torch

from mdeberta import io
from mdeberta.train.export import load_run


def average_cosine(table: torch.Tensor, rows: torch.Tensor | None = None) -> float:
    """Mean cosine similarity over all pairs of distinct rows (optionally only `rows`, bool)."""
    x = table.detach().double()
    if rows is not None:
        x = x[rows]
    n = x.shape[0]
    if n < 2:
        raise ValueError("need at least two embedding rows")
    u = torch.nn.functional.normalize(x, dim=1)
    total = u.sum(dim=0)
    return float((total @ total - (u * u).sum()) / (n * (n - 1)))


def _token_rows(info: dict[str, Any], rows: int) -> torch.Tensor:
    """Real, non-special tokens: special ids and the padding rows past the vocabulary excluded."""
    keep = torch.zeros(rows, dtype=torch.bool)
    keep[: int(info["vocab"]["vocab_size"])] = True
    keep[sorted(set(info["vocab"]["special_ids"].values()))] = False
    return keep


def analyze_run(run: str) -> dict[str, Any]:
    """{run, step, sharing, E_G, E_D, E_delta_norm} for a run dir or one of its checkpoints."""
    checkpoint = None
    if io.exists(io.join(run, "meta.json")):  # a checkpoint dir: its run is two levels up
        checkpoint, run_dir = run, run.rstrip("/").rsplit("/", 2)[0]
    else:
        run_dir = run
    model, info, step = load_run(run_dir, checkpoint)
    keep = _token_rows(info, model.E_G.shape[0])
    E_delta = model.E_delta
    return {
        "run": run,
        "step": step,
        "sharing": model.sharing,
        "E_G": average_cosine(model.E_G, keep),
        "E_D": average_cosine(model.discriminator_embeddings(), keep),
        "E_delta_norm": float(E_delta.detach().norm()) if E_delta is not None else None,
    }


def analyze_runs(runs: list[str]) -> list[dict[str, Any]]:
    return [analyze_run(run) for run in runs]


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| run | sharing | step | avg cos E_G | avg cos E_D |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['sharing']} | {r['step']} | {r['E_G']:.4f} | {r['E_D']:.4f} |"
        )
    return "\n".join(lines)
