"""The training loop: data -> masking -> RTD model -> losses -> optimizer steps, with checkpoints.

One optimizer step consumes batch_size sequences over all ranks and accumulation steps. Losses are
normalised by the *global* counts (masked tokens for MLM, non-pad tokens for RTD), so the gradient
is the same whatever the split over processes and micro-batches: 1 process and N processes with the
same global batch train the same model (tests/train/test_ddp.py checks it).

    joint (default)   loss = L_MLM + λ·L_RTD, one backward, one AdamW, one clip over G and D
    decoupled         G: backward L_MLM, clip, step; then D (which now sees the updated E_G in
                      gdes): backward λ·L_RTD on the replacements G sampled before its update,
                      clip, step; two AdamWs, as the official DeBERTa-v3 trainer
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from mdeberta.rtd import RTDModel, discriminator_forward, generator_forward
from mdeberta.train import checkpoint as ckpt
from mdeberta.train.config import TrainConfig
from mdeberta.train.distributed import Dist
from mdeberta.train.masking import MaskedBatch, mask_tokens

STATS = ("mlm_sum", "mlm_correct", "rtd_sum", "rtd_correct", "replaced", "tokens", "masked")


class TrainingDiverged(FloatingPointError):
    """A non-finite loss or gradient norm; the run stops without saving over good checkpoints."""


@dataclass
class Trainer:
    """The live objects of a run (built by train.run) and the loop over them."""

    cfg: TrainConfig
    model: RTDModel
    optimizers: list
    schedulers: list
    dataset: object  # mdeberta.shard_reader.ShardDataset
    dist: Dist
    run_dir: str
    step: int = 0
    tokens: int = 0
    samples_read: int = 0  # by this rank since the start position below
    start_position: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        special = self.dataset.special_ids
        self.mask_args = dict(
            mask_id=special["mask"],
            pad_id=special["pad"],
            special_ids=list(special.values()),
            vocab_size=self.dataset.vocab_size,
            mask_prob=self.cfg.mask_prob,
            policy=self.cfg.mask_policy,
        )
        self.accumulation = self.cfg.accumulation_steps(self.dist.world_size)
        self.last_step_tokens = 0
        self.wrap()

    # setup

    def wrap(self) -> None:
        """DDP wrappers: the whole RTD model (joint), or G and D separately (decoupled)."""
        m = self.model
        if not self.dist.enabled:
            self.joint, self.gen, self.disc = m, m.generator, m.discriminator
            return
        ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
        if self.cfg.decoupled:
            self.joint = None
            self.gen = DDP(m.generator, device_ids=ids)
            self.disc = DDP(m.discriminator, device_ids=ids)
        else:
            self.joint = DDP(m, device_ids=ids)

    def rank_state(self) -> ckpt.RankState:
        epoch, consumed = self.position()
        return ckpt.RankState(epoch, consumed, ckpt.capture_rng())

    def position(self) -> tuple[int, int]:
        """(epoch, consumed) of this rank's data stream after the samples read so far."""
        n = self.dataset.num_samples
        epoch, consumed = self.start_position
        return divmod(epoch * n + consumed + self.samples_read, n)

    def batches(self):
        """Micro-batches [micro_batch_size, seq_len] of this rank, from the current position."""
        self.dataset.set_position(*self.position())
        # a generator of its own: creating the iterator must not draw from the global RNG,
        # whose state a resumed run restores for dropout
        loader = DataLoader(
            self.dataset,
            batch_size=self.cfg.micro_batch_size,
            num_workers=self.cfg.num_workers,
            pin_memory=self.dist.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.cfg.seed),
        )
        for batch in loader:
            self.samples_read += len(batch)
            yield batch

    # one optimizer step

    def next_step_batches(self, stream) -> tuple[list[MaskedBatch], torch.Tensor]:
        """This rank's micro-batches of the next step, masked, and its (masked, tokens) counts."""
        out, counts = [], torch.zeros(2, dtype=torch.float64)
        for _ in range(self.accumulation):
            ids = next(stream)
            masked = mask_tokens(ids, seed=self.cfg.seed, step=self.step, **self.mask_args)
            counts += torch.stack([masked.mask.sum(), masked.attention_mask.sum()]).double()
            out.append(masked.to(self.dist.device))
        return out, counts

    def train_step(self, batches: list[MaskedBatch], local: torch.Tensor) -> dict[str, float]:
        counts = self.dist.all_reduce_sum(local.to(self.dist.device)).tolist()
        n_masked, n_tokens = max(counts[0], 1.0), max(counts[1], 1.0)
        if self.cfg.decoupled:
            stats, norms = self._decoupled_step(batches, n_masked, n_tokens)
        else:
            stats, norms = self._joint_step(batches, n_masked, n_tokens)
        lr = self.schedulers[0].get_last_lr()[0]  # the rate this step trained with
        for scheduler in self.schedulers:
            scheduler.step()
        self.step += 1
        self.tokens += int(counts[1])
        self.last_step_tokens = int(counts[1])
        return {**self._summarise(stats, norms), "lr": lr}

    def _joint_step(self, batches, n_masked, n_tokens):
        stats = torch.zeros(len(STATS), dtype=torch.float64, device=self.dist.device)
        self.optimizers[0].zero_grad(set_to_none=True)
        for i, b in enumerate(batches):
            with self._sync(self.joint, i):
                with self._autocast():
                    out = self.joint(
                        b.input_ids, b.attention_mask, b.masked_ids, b.mask, b.sample_noise
                    )
                mlm_sum = _mlm_sum(out)
                loss = mlm_sum / n_masked + self.cfg.rtd_weight * out["rtd_sum"] / n_tokens
                (loss * self.dist.world_size).backward()  # DDP averages; we want the global sum
            stats += _stat_vector(out, mlm_sum)
        stats = self._global(stats)
        self._check_finite(stats, n_masked, n_tokens)
        norm = self._clip_and_step(self.optimizers[0], self.model.parameters(), "")
        return stats, {"grad_norm": norm}

    def _decoupled_step(self, batches, n_masked, n_tokens):
        stats = torch.zeros(len(STATS), dtype=torch.float64, device=self.dist.device)
        never = self.model.never_sample
        g_opt, d_opt = self.optimizers
        g_opt.zero_grad(set_to_none=True)
        samples = []
        for i, b in enumerate(batches):
            with self._sync(self.gen, i):
                with self._autocast():
                    g = generator_forward(
                        self.gen,
                        b.masked_ids,
                        b.attention_mask,
                        b.input_ids,
                        b.mask,
                        b.sample_noise,
                        never,
                    )
                mlm_sum = _mlm_sum({**g, "masked": b.mask.sum()})
                (mlm_sum / n_masked * self.dist.world_size).backward()
            samples.append(g["sampled"])
            stats[0] += mlm_sum.detach().double()
            stats[1] += g["mlm_correct"].double()
        g_stats = self._global(stats.clone())
        self._check_finite(g_stats, n_masked, n_tokens, rtd=False)
        g_norm = self._clip_and_step(g_opt, self.model.generator.parameters(), "generator")
        d_opt.zero_grad(set_to_none=True)
        for i, (b, sampled) in enumerate(zip(batches, samples, strict=True)):
            with self._sync(self.disc, i):
                with self._autocast():
                    d = discriminator_forward(
                        self.disc, b.input_ids, b.attention_mask, b.mask, sampled
                    )
                (self.cfg.rtd_weight * d["rtd_sum"] / n_tokens * self.dist.world_size).backward()
            d["masked"] = b.mask.sum()
            stats += _stat_vector(d, None)
        stats = self._global(stats)
        self._check_finite(stats, n_masked, n_tokens)
        d_norm = self._clip_and_step(d_opt, self.model.discriminator.parameters(), "discriminator")
        return stats, {"grad_norm_generator": g_norm, "grad_norm_discriminator": d_norm}

    def _sync(self, module, i: int):
        """DDP all-reduces gradients only on the last micro-batch of a step."""
        last = i == self.accumulation - 1
        if isinstance(module, DDP) and not last:
            return module.no_sync()
        return contextlib.nullcontext()

    def _autocast(self):
        """bf16 autocast on GPU (precision auto or bf16), plain fp32 otherwise."""
        cfg, device = self.cfg, self.dist.device
        if cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda"):
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _global(self, stats: torch.Tensor) -> torch.Tensor:
        return self.dist.all_reduce_sum(stats)

    def _check_finite(self, stats, n_masked, n_tokens, rtd: bool = True) -> None:
        mlm = stats[0].item() / n_masked
        rtd_loss = stats[2].item() / n_tokens if rtd else 0.0
        if not (math.isfinite(mlm) and math.isfinite(rtd_loss)):
            self._diverged(f"loss is not finite (mlm {mlm}, rtd {rtd_loss})")

    def _clip_and_step(self, optimizer, params, which: str) -> float:
        limit = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(list(params), limit).item()
        if not math.isfinite(norm):
            self._diverged(f"{which or 'the'} gradient norm is not finite ({norm})".strip())
        optimizer.step()
        return norm

    def _diverged(self, what: str) -> None:
        last = ckpt.latest_checkpoint(self.run_dir)
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        raise TrainingDiverged(
            f"step {self.step + 1}: {what}; stopping without saving, {kept}. Lower lr or raise "
            "warmup_steps (--set ...) or check the data, then rerun to resume from it."
        )

    def _summarise(self, stats: torch.Tensor, norms: dict) -> dict[str, float]:
        s = dict(zip(STATS, stats.tolist(), strict=True))
        masked, tokens = max(s["masked"], 1.0), max(s["tokens"], 1.0)
        mlm, rtd = s["mlm_sum"] / masked, s["rtd_sum"] / tokens
        return {
            "loss": mlm + self.cfg.rtd_weight * rtd,
            "mlm_loss": mlm,
            "mlm_accuracy": s["mlm_correct"] / masked,
            "rtd_loss": rtd,
            "rtd_accuracy": s["rtd_correct"] / tokens,
            "replaced_fraction": s["replaced"] / tokens,
            **norms,
        }

    # checkpoints

    def save(self) -> str:
        return ckpt.save_checkpoint(
            self.run_dir,
            step=self.step,
            tokens=self.tokens,
            model=self.model,
            optimizers=self.optimizers,
            schedulers=self.schedulers,
            rank_state=self.rank_state(),
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            barrier=self.dist.barrier,
            keep=self.cfg.keep_checkpoints,
        )

    def run(self, logger) -> None:
        """Train from the current step to cfg.steps, logging and checkpointing on the way."""
        stream = self.batches()
        self.model.train()
        while self.step < self.cfg.steps:
            values = self.train_step(*self.next_step_batches(stream))
            logger.update(self.step, self.tokens, self.last_step_tokens, values)
            if self.step % self.cfg.checkpoint_interval == 0 or self.step == self.cfg.steps:
                self.save()


def _mlm_sum(out: dict) -> torch.Tensor:
    """G's summed MLM loss (its mean times the local count; 0 when nothing is masked here)."""
    masked = out["masked"]
    # mean over no positions is NaN; where() keeps it out of both the value and the gradient
    return torch.where(masked > 0, out["mlm_loss"] * masked, out["mlm_loss"].new_zeros(()))


def _stat_vector(out: dict, mlm_sum: torch.Tensor | None) -> torch.Tensor:
    values = [
        mlm_sum.detach() if mlm_sum is not None else 0.0,
        out.get("mlm_correct", 0.0),
        out["rtd_sum"].detach(),
        out["rtd_correct"],
        out["replaced"],
        out["tokens"],
        out["masked"],
    ]
    return torch.stack(
        [torch.as_tensor(v, dtype=torch.float64, device=out["tokens"].device) for v in values]
    )
