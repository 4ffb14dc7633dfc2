"""Validation during pretraining: MLM loss, RTD loss and RTD accuracy on held-out sequences.

The held-out set is the first `eval_sequences` sequences of a second token-shards directory
(`eval_data`, made by `mdeberta shard` with the same vocabulary, e.g. from a held-out part of the
corpus), in the order a seed-0 reader gives them, split across ranks as training data is. They are
masked once, with a key of their own, so every evaluation scores the same positions and the same
replacement draws: the numbers move only because the model does. The models run in eval mode (no
dropout) and without gradients, and nothing here draws from a random generator, so scoring neither
changes training nor depends on when it happens: a resumed run writes the same values.
"""

from __future__ import annotations

import itertools

import torch

from mdeberta.config import ConfigError
from mdeberta.precision import autocast
from mdeberta.shard_reader import ShardDataset, rank_size
from mdeberta.train.masking import MaskedBatch, mask_tokens
from mdeberta.train.stats import COUNTS, SUMS, Named, step_metrics

EVAL_STEP = -1  # the masking key's step: no training step uses it


class Validator:
    """The held-out micro-batches of this rank, masked once, and how to score a model on them."""

    def __init__(self, url: str, cfg, dist, train_vocab_sha256: str, mask_args: dict) -> None:
        data = ShardDataset(url, seed=0, rank=dist.rank, world_size=dist.world_size)
        if data.vocab_sha256 != train_vocab_sha256:
            raise ConfigError(
                f"eval_data {url} was made with vocabulary {data.vocab_sha256[:12]}..., the "
                f"training shards with {train_vocab_sha256[:12]}...: shard the held-out text "
                "with the training vocabulary"
            )
        total = min(cfg.eval_sequences, data.num_sequences)
        rows = list(itertools.islice(iter(data), rank_size(total, dist.rank, dist.world_size)))
        self.sequences = total
        self.url, self.cfg, self.dist = url, cfg, dist
        self.batches: list[MaskedBatch] = [
            mask_tokens(torch.stack(rows[i : i + cfg.micro_batch_size]), seed=cfg.seed,
                        step=EVAL_STEP, **mask_args).to(dist.device)
            for i in range(0, len(rows), cfg.micro_batch_size)
        ]  # fmt: skip

    @torch.no_grad()
    def scores(self, model) -> dict[str, float]:
        """eval_mlm_loss, eval_mlm_accuracy, eval_rtd_loss, eval_rtd_accuracy and
        eval_replaced_fraction of `model` (an RTDModel) over the whole held-out set."""
        was_training = model.training
        model.eval()
        sums, counts = Named(SUMS, self.dist.device), Named(COUNTS, self.dist.device)
        for batch in self.batches:
            with autocast(self.cfg.precision, self.dist.device):
                sums.add(model(*batch.model_inputs()))
            counts.vector += batch.counts.to(self.dist.device)
        model.train(was_training)
        metrics = step_metrics(
            sums.all_reduce(self.dist), counts.all_reduce(self.dist), self.cfg.rtd_weight
        )
        return {f"eval_{k}": float(v) for k, v in metrics.items() if k != "loss"}
