"""What one optimizer step measures, by name: sums over micro-batches and ranks, then metrics.

The model returns sums (mlm_sum, rtd_sum, hits, replaced tokens); the batches give the counts
(masked tokens, non-pad tokens). Both are summed over the step's micro-batches on this rank and
then over ranks, each in one all-reduce of one float64 vector (exact for counts below 2^53), and
every loss and rate is a sum divided by its *global* count: here, and nowhere else.
"""

from __future__ import annotations

import torch

SUMS = ("mlm_sum", "mlm_correct", "rtd_sum", "rtd_correct", "replaced")
"""What the forward adds up (mdeberta.rtd): the two summed losses and three counts of hits."""
COUNTS = ("masked", "tokens")
"""What the batches hold: positions G predicts (MLM's denominator), non-pad tokens (RTD's)."""


class Named:
    """float64 values by name, held as one vector so that one all-reduce sums them all."""

    def __init__(self, names: tuple[str, ...], device: torch.device | str) -> None:
        self.names = names
        self.vector = torch.zeros(len(names), dtype=torch.float64, device=device)

    def add(self, values: dict[str, torch.Tensor]) -> None:
        """Add the named entries of `values` (others, such as "sampled", are not statistics)."""
        zero = self.vector.new_zeros(())  # made on the device: no host-to-device copy
        self.vector += torch.stack(
            [values[n].detach().double() if n in values else zero for n in self.names]
        )

    def all_reduce(self, dist) -> Named:
        """Summed over the ranks of `dist` (a mdeberta.train.distributed.Dist), in place."""
        dist.all_reduce_sum(self.vector)
        return self

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.vector[self.names.index(name)]


def normalised_loss(out: dict, counts: Named, rtd_weight: float) -> torch.Tensor:
    """The objective of one micro-batch: L_MLM + λ·L_RTD with each sum divided by its global
    count (masked tokens, non-pad tokens; at least 1); a part absent from `out` is left out."""
    loss = 0.0
    if "mlm_sum" in out:
        loss = loss + out["mlm_sum"] / denominator(counts, "masked")
    if "rtd_sum" in out:
        loss = loss + rtd_weight * out["rtd_sum"] / denominator(counts, "tokens")
    return loss


def denominator(counts: Named, name: str) -> torch.Tensor:
    """A global count as a divisor: at least 1 (a step may mask nothing on every rank)."""
    return counts[name].clamp(min=1.0).float()


def step_metrics(sums: Named, counts: Named, rtd_weight: float) -> dict[str, torch.Tensor]:
    """The step's losses and rates from its global sums and counts."""
    masked, tokens = denominator(counts, "masked").double(), denominator(counts, "tokens").double()
    mlm, rtd = sums["mlm_sum"] / masked, sums["rtd_sum"] / tokens
    return {
        "loss": mlm + rtd_weight * rtd,
        "mlm_loss": mlm,
        "mlm_accuracy": sums["mlm_correct"] / masked,
        "rtd_loss": rtd,
        "rtd_accuracy": sums["rtd_correct"] / tokens,
        "replaced_fraction": sums["replaced"] / tokens,
    }
