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

from mdeberta.rtd import RTDModel, discriminator_forward, generator_forward, masked_positions
from mdeberta.train import checkpoint as ckpt
from mdeberta.train.config import TrainConfig
from mdeberta.train.distributed import Dist
from mdeberta.train.masking import MaskedBatch, mask_tokens
from mdeberta.train.stats import COUNTS, SUMS, Named, normalised_loss, step_metrics


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

    def next_step_batches(self, stream) -> tuple[list[MaskedBatch], Named]:
        """This rank's micro-batches of the next step, masked, and their counts."""
        out, counts = [], Named(COUNTS, "cpu")
        for _ in range(self.accumulation):
            ids = next(stream)
            masked = mask_tokens(ids, seed=self.cfg.seed, step=self.step, **self.mask_args)
            counts.add({"masked": masked.mask.sum(), "tokens": masked.attention_mask.sum()})
            out.append(masked.to(self.dist.device))
        return out, counts

    def train_step(self, batches: list[MaskedBatch], local: Named) -> dict[str, float]:
        counts = Named(COUNTS, self.dist.device)
        counts.vector.copy_(local.vector)
        counts.all_reduce(self.dist)
        sums = Named(SUMS, self.dist.device)
        if self.cfg.decoupled:
            norms = self._decoupled_step(batches, counts, sums)
        else:
            norms = self._joint_step(batches, counts, sums)
        lr = self.schedulers[0].get_last_lr()[0]  # the rate this step trained with
        for scheduler in self.schedulers:
            scheduler.step()
        self.step += 1
        step_tokens = int(counts["tokens"].item())
        self.tokens += step_tokens
        self.last_step_tokens = step_tokens
        values = step_metrics(sums, counts, self.cfg.rtd_weight)
        return {**{k: v.item() for k, v in values.items()}, **norms, "lr": lr}

    def _loss(self, out: dict, counts: Named) -> torch.Tensor:
        """What this rank backpropagates: DDP averages gradients over ranks, the global sum needs
        the world size back."""
        return normalised_loss(out, counts, self.cfg.rtd_weight) * self.dist.world_size

    def _joint_step(self, batches, counts: Named, sums: Named) -> dict[str, float]:
        self.optimizers[0].zero_grad(set_to_none=True)
        for i, b in enumerate(batches):
            with self._sync(self.joint, i):
                with self._autocast():
                    out = self.joint(
                        b.input_ids, b.attention_mask, b.masked_ids, b.mask, b.sample_noise
                    )
                self._loss(out, counts).backward()
            sums.add(out)
        self._check_finite(sums.all_reduce(self.dist), counts)
        norm = self._clip_and_step(self.optimizers[0], self.model.parameters(), "")
        return {"grad_norm": norm}

    def _decoupled_step(self, batches, counts: Named, sums: Named) -> dict[str, float]:
        never = self.model.never_sample
        g_opt, d_opt = self.optimizers
        g_opt.zero_grad(set_to_none=True)
        samples = []
        for i, b in enumerate(batches):
            positions = masked_positions(b.mask)
            with self._sync(self.gen, i):
                with self._autocast():
                    g = generator_forward(
                        self.gen,
                        b.masked_ids,
                        b.attention_mask,
                        b.input_ids,
                        b.mask,
                        positions,
                        b.sample_noise,
                        never,
                    )
                self._loss(g, counts).backward()
            samples.append((positions, g.pop("sampled")))
            sums.add(g)
        g_sums = Named(SUMS, self.dist.device)
        g_sums.vector.copy_(sums.vector)
        self._check_finite(g_sums.all_reduce(self.dist), counts, rtd=False)
        g_norm = self._clip_and_step(g_opt, self.model.generator.parameters(), "generator")
        d_opt.zero_grad(set_to_none=True)
        for i, (b, (positions, sampled)) in enumerate(zip(batches, samples, strict=True)):
            with self._sync(self.disc, i):
                with self._autocast():
                    d = discriminator_forward(
                        self.disc, b.input_ids, b.attention_mask, positions, sampled
                    )
                self._loss(d, counts).backward()
            sums.add(d)
        self._check_finite(sums.all_reduce(self.dist), counts)
        d_norm = self._clip_and_step(d_opt, self.model.discriminator.parameters(), "discriminator")
        return {"grad_norm_generator": g_norm, "grad_norm_discriminator": d_norm}

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

    def _check_finite(self, sums: Named, counts: Named, rtd: bool = True) -> None:
        values = step_metrics(sums, counts, self.cfg.rtd_weight)
        mlm = values["mlm_loss"].item()
        rtd_loss = values["rtd_loss"].item() if rtd else 0.0
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
