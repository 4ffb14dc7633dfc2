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
from torch.utils.data import get_worker_info

Policy = Literal["mask", "80-10-10"]
# rows of the per-sequence noise: mask selection, replacement policy, random token, G sampling
SELECT, POLICY, RANDOM_TOKEN, SAMPLE = range(4)


@dataclass
class MaskedBatch:
    """One micro-batch ready for the RTD model ([B, L] unless said otherwise)."""

    input_ids: torch.Tensor
    """The original tokens (the MLM targets and the discriminator's 'original' reference)."""
    attention_mask: torch.Tensor | None
    """1 for real tokens, 0 for padding; the RTD loss covers every 1. None when nothing is padding
    (packed shards): the encoder then skips masking without checking for it on the device."""
    masked_ids: torch.Tensor
    """The generator's input: input_ids with the selected positions replaced by the policy."""
    mask: torch.Tensor
    """True at the selected positions (the MLM loss and the replacements happen there)."""
    sample_noise: torch.Tensor
    """Uniforms in [0, 1) for the generator's categorical sampling at the selected positions."""
    positions: torch.Tensor
    """[C] flat indices (into the B·L tokens, row-major) of the selected positions, padded to
    C = B · expected_masks(L) with an unselected one: every micro-batch of a shape has the same
    shapes (one compiled graph), and the device is never asked how many tokens were selected."""
    counts: torch.Tensor
    """[2] float64: selected tokens and non-pad tokens, what the batch adds to the denominators."""
    step: int
    """The optimizer step whose key drew the masks (the trainer checks it is the one it runs)."""

    def model_inputs(self) -> tuple:
        """The arguments of RTDModel.forward (and of the decoupled GeneratorStep), in order."""
        fields = (self.input_ids, self.attention_mask, self.masked_ids, self.mask)
        return (*fields, self.sample_noise, self.positions)

    def _apply(self, fn) -> MaskedBatch:
        fields = {k: fn(v) if isinstance(v, torch.Tensor) else v for k, v in vars(self).items()}
        return MaskedBatch(**fields)

    def to(self, device: torch.device | str) -> MaskedBatch:
        """On `device`; from pinned memory (pin_memory) the copies do not block the host."""
        return self._apply(lambda t: t.to(device, non_blocking=True))

    def pin_memory(self) -> MaskedBatch:
        """Page-locked copies (the DataLoader calls this when pin_memory=True)."""
        return self._apply(lambda t: t.pin_memory())


class MaskingCollate:
    """The DataLoader's collate_fn: stacks a micro-batch and masks it, in the loader's worker
    processes, so masking never holds up the training loop.

    Masks are keyed by the step that will train on them. Micro-batch n of the stream (counted
    from the loader's start, at step `first_step`) belongs to step first_step + n // accumulation;
    worker w of k collates micro-batches w, w + k, w + 2k, ... (the order ShardDataset gives
    its workers and the DataLoader returns their batches in), so each worker knows n.
    """

    def __init__(self, *, first_step: int, accumulation: int, seed: int, **mask_args) -> None:
        self.first_step, self.accumulation, self.seed = first_step, accumulation, seed
        self.mask_args = mask_args
        self.collated = 0  # by this copy (each worker process has its own)

    def __call__(self, samples: list[torch.Tensor]) -> MaskedBatch:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        number = self.collated * workers + worker
        self.collated += 1
        step = self.first_step + number // self.accumulation
        return mask_tokens(torch.stack(samples), seed=self.seed, step=step, **self.mask_args)


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
    """Select mask_prob of the non-special tokens and build the generator's input (on the CPU).

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
    not_pad = input_ids != pad_id
    return MaskedBatch(
        input_ids=input_ids,
        attention_mask=None if not_pad.all() else not_pad.long(),
        masked_ids=masked_ids,
        mask=mask,
        sample_noise=noise[:, SAMPLE].contiguous(),
        positions=padded_positions(mask, len(mask) * expected_masks(mask.shape[1], mask_prob)),
        counts=torch.stack([mask.sum(), not_pad.sum()]).double(),
        step=step,
    )


def padded_positions(mask: torch.Tensor, capacity: int) -> torch.Tensor:
    """Flat indices of mask's True entries (row-major), then the first False entry repeated up to
    `capacity`: a filler that mdeberta.rtd counts as unselected and leaves unchanged."""
    flat = mask.flatten()
    selected = flat.nonzero().squeeze(1)
    if len(selected) > capacity:
        raise ValueError(f"{len(selected)} selected positions exceed the capacity {capacity}")
    filler = (~flat).int().argmax().expand(capacity - len(selected))
    return torch.cat([selected, filler])


def expected_masks(n_candidates: int, mask_prob: float) -> int:
    """How many positions select_positions picks in a row with n candidates (for docs and tests)."""
    return (
        0
        if n_candidates == 0
        else max(1, min(n_candidates, math.floor(n_candidates * mask_prob + 0.5)))
    )
