"""Masking for replaced token detection: which tokens the generator predicts and what it sees there.

The randomness is keyed per sequence by (seed, step, the sequence's tokens) instead of being drawn
from one global stream. A sequence is therefore masked (and later sampled) identically whatever
rank, micro-batch or number of processes it lands in, so one process and N processes train on the
same batches, and a resumed run repeats exactly what the interrupted one would have done. A new
step gives a new key, so masks are drawn anew every step (dynamic masking, as the official code).
Two identical sequences in the same step get the same mask; packed, deduplicated corpora make
that rare, and it biases nothing.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal

import torch

Policy = Literal["mask", "80-10-10"]
# rows of the per-sequence noise: mask selection, replacement policy, random token, G sampling
SELECT, POLICY, RANDOM_TOKEN, SAMPLE = range(4)


@dataclass
class MaskedBatch:
    """One micro-batch ready for the RTD model (all [B, L])."""

    input_ids: torch.Tensor
    """The original tokens (the MLM targets and the discriminator's 'original' reference)."""
    attention_mask: torch.Tensor
    """1 for real tokens, 0 for padding; the RTD loss covers every 1."""
    masked_ids: torch.Tensor
    """The generator's input: input_ids with the selected positions replaced by the policy."""
    mask: torch.Tensor
    """True at the selected positions (the MLM loss and the replacements happen there)."""
    sample_noise: torch.Tensor
    """Uniforms in [0, 1) for the generator's categorical sampling at the selected positions."""

    def to(self, device: torch.device | str) -> MaskedBatch:
        fields = {k: v.to(device, non_blocking=True) for k, v in self.__dict__.items()}
        return MaskedBatch(**fields)


def sequence_noise(input_ids: torch.Tensor, *, seed: int, step: int) -> torch.Tensor:
    """[B, 4, L] uniforms in [0, 1), each row of the batch drawn from its own key."""
    ids = input_ids.detach().to("cpu", torch.int64).contiguous()
    out = torch.empty(ids.shape[0], 4, ids.shape[1])
    prefix = f"{seed}:{step}:".encode()
    for row in range(ids.shape[0]):
        digest = hashlib.blake2b(prefix + ids[row].numpy().tobytes(), digest_size=8).digest()
        rng = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
        out[row] = torch.rand(4, ids.shape[1], generator=rng)
    return out


def select_positions(
    candidates: torch.Tensor, noise: torch.Tensor, mask_prob: float
) -> torch.Tensor:
    """Exactly round(mask_prob * n) of each row's n candidate positions (at least one), uniformly.

    A random subset of fixed size (as ELECTRA), not i.i.d. coin flips, so every sequence of the
    same length gets the same number of predictions.
    """
    n = candidates.sum(dim=1)
    k = torch.floor(n.double() * mask_prob + 0.5).long().clamp(min=1).minimum(n)
    scores = torch.where(candidates, noise, torch.full_like(noise, -1.0))
    order = scores.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order).contiguous())
    return (rank < k[:, None]) & candidates


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    seed: int,
    step: int,
    mask_id: int,
    pad_id: int,
    special_ids: list[int],
    vocab_size: int,
    mask_prob: float = 0.15,
    policy: Policy = "mask",
) -> MaskedBatch:
    """Select mask_prob of the non-special tokens and build the generator's input.

    policy "mask": every selected token becomes [MASK] (the official DeBERTa-v3 code).
    policy "80-10-10": 80% [MASK], 10% a random non-special token, 10% unchanged (BERT).
    `vocab_size` is the tokenizer's (real) vocabulary: random tokens are drawn below it.
    """
    input_ids = input_ids.to("cpu", torch.int64)
    noise = sequence_noise(input_ids, seed=seed, step=step)
    special = torch.zeros(max(vocab_size, int(input_ids.max()) + 1), dtype=torch.bool)
    special[torch.tensor(sorted(set(special_ids) | {mask_id, pad_id}))] = True
    candidates = ~special[input_ids]
    mask = select_positions(candidates, noise[:, SELECT], mask_prob)
    masked_ids = input_ids.clone()
    if policy == "mask":
        masked_ids[mask] = mask_id
    else:
        choice = noise[:, POLICY]
        to_mask = mask & (choice < 0.8)
        to_random = mask & (choice >= 0.8) & (choice < 0.9)
        allowed = (~special[:vocab_size]).nonzero().squeeze(1)
        pick = (noise[:, RANDOM_TOKEN] * len(allowed)).long().clamp(max=len(allowed) - 1)
        masked_ids[to_mask] = mask_id
        masked_ids[to_random] = allowed[pick[to_random]]
    return MaskedBatch(
        input_ids=input_ids,
        attention_mask=(input_ids != pad_id).long(),
        masked_ids=masked_ids,
        mask=mask,
        sample_noise=noise[:, SAMPLE].contiguous(),
    )


def expected_masks(n_candidates: int, mask_prob: float) -> int:
    """How many positions select_positions picks in a row with n candidates (for docs and tests)."""
    return (
        0
        if n_candidates == 0
        else max(1, min(n_candidates, math.floor(n_candidates * mask_prob + 0.5)))
    )
