"""The training loop: data -> masking -> RTD model -> losses -> optimizer steps, with checkpoints.

One optimizer step consumes batch_size sequences over all ranks and accumulation steps. Losses are
normalised by the *global* counts (masked tokens for MLM, non-pad tokens for RTD), so the gradient
is the same whatever the split over processes and micro-batches: 1 process and N processes with the
same global batch train the same model (tests/train/test_ddp.py checks it).

    joint (default)   loss = L_MLM + λ·L_RTD, one backward, one AdamW, one clip over G and D
    decoupled         G: backward L_MLM, clip, step; then D (which now sees the updated E_G in
                      gdes): backward λ·L_RTD on the replacements G sampled before its update,
                      clip, step; two AdamWs, as the official DeBERTa-v3 trainer

Nothing in a step waits for the device: the DataLoader's workers mask the batches (MaskingCollate)
into pinned memory, copied without blocking; the counts are all-reduced on the device; losses,
rates and gradient norms stay there until a log or checkpoint step reads all the steps since the
last one in a single transfer (`flush`), which is also where a non-finite loss or gradient norm is
found. A diverged run thus stops at the next log step, before any checkpoint could replace a good
one. fp16 scales the loss (GradScaler); a step whose gradients overflowed is skipped, not fatal.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from mdeberta.precision import autocast, grad_scaler
from mdeberta.rtd import RTDModel
from mdeberta.train import checkpoint as ckpt
from mdeberta.train.config import TrainConfig
from mdeberta.train.distributed import Dist
from mdeberta.train.masking import MaskedBatch, MaskingCollate
from mdeberta.train.stats import COUNTS, SUMS, Named, normalised_loss, step_metrics
from mdeberta.train.wrap import DiscriminatorStep, GeneratorStep, no_sync, wrap


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
    validator: object = None  # mdeberta.train.validate.Validator, when cfg.eval_data is set

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
        self.scaler = grad_scaler(self.cfg.precision, self.dist.device)  # fp16 only
        self.pending: list[dict] = []  # per-step values not yet read from the device
        if self.cfg.decoupled:
            self.gen = wrap(GeneratorStep(self.model), self.cfg, self.dist)
            self.disc = wrap(DiscriminatorStep(self.model), self.cfg, self.dist)
        else:
            self.joint = wrap(self.model, self.cfg, self.dist)

    # data

    def rank_state(self) -> ckpt.RankState:
        epoch, consumed = self.position()
        return ckpt.RankState(epoch, consumed, ckpt.capture_rng())

    def position(self) -> tuple[int, int]:
        """(epoch, consumed) of this rank's data stream after the samples read so far."""
        n = self.dataset.num_samples
        epoch, consumed = self.start_position
        return divmod(epoch * n + consumed + self.samples_read, n)

    def batches(self):
        """Masked micro-batches [micro_batch_size, seq_len] of this rank, from the current
        position and step."""
        self.dataset.set_position(*self.position())
        collate = MaskingCollate(
            first_step=self.step,
            accumulation=self.accumulation,
            seed=self.cfg.seed,
            **self.mask_args,
        )
        # a generator of its own: creating the iterator must not draw from the global RNG,
        # whose state a resumed run restores for dropout
        loader = DataLoader(
            self.dataset,
            batch_size=self.cfg.micro_batch_size,
            num_workers=self.cfg.num_workers,
            collate_fn=collate,
            pin_memory=self.dist.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.cfg.seed),
        )
        for batch in loader:
            self.samples_read += len(batch.input_ids)
            yield batch

    def next_step_batches(self, stream) -> list[MaskedBatch]:
        """This rank's micro-batches of the next step, on the device."""
        out = []
        for _ in range(self.accumulation):
            batch = next(stream)
            if batch.step != self.step:  # the collate's count of micro-batches went wrong
                raise RuntimeError(f"a batch masked for step {batch.step} at step {self.step}")
            out.append(batch.to(self.dist.device))
        return out

    # one optimizer step

    def train_step(self, batches: list[MaskedBatch]) -> dict:
        """One optimizer step; returns its values, still on the device (see `flush`)."""
        counts = Named(COUNTS, self.dist.device)
        for b in batches:
            counts.vector += b.counts
        counts.all_reduce(self.dist)
        sums = Named(SUMS, self.dist.device)
        if self.cfg.decoupled:
            norms = self._decoupled_step(batches, counts, sums)
        else:
            norms = self._joint_step(batches, counts, sums)
        if self.scaler is not None:
            self.scaler.update()
        lr = self.schedulers[0].get_last_lr()[0]  # the rate this step trained with
        with warnings.catch_warnings():  # a step the fp16 scaler skipped still uses up its rate
            warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()`"))
            for scheduler in self.schedulers:
                scheduler.step()
        self.step += 1
        values = step_metrics(sums.all_reduce(self.dist), counts, self.cfg.rtd_weight)
        return {**values, **norms, "lr": lr, "step_tokens": counts["tokens"]}

    def _joint_step(self, batches, counts: Named, sums: Named) -> dict[str, torch.Tensor]:
        self.optimizers[0].zero_grad(set_to_none=True)
        for i, b in enumerate(batches):
            with no_sync(self.joint, last=i == len(batches) - 1):
                with autocast(self.cfg.precision, self.dist.device):
                    out = self.joint(*b.model_inputs())
                self._backward(out, counts)
            sums.add(out)
        return {"grad_norm": self._clip_and_step(self.optimizers[0], self.model.parameters())}

    def _decoupled_step(self, batches, counts: Named, sums: Named) -> dict[str, torch.Tensor]:
        g_opt, d_opt = self.optimizers
        g_opt.zero_grad(set_to_none=True)
        samples = []
        for i, b in enumerate(batches):
            with no_sync(self.gen, last=i == len(batches) - 1):
                with autocast(self.cfg.precision, self.dist.device):
                    g = self.gen(*b.model_inputs())
                self._backward(g, counts)
            samples.append(g["sampled"])
            sums.add(g)
        g_norm = self._clip_and_step(g_opt, self.model.generator.parameters())
        d_opt.zero_grad(set_to_none=True)
        for i, (b, sampled) in enumerate(zip(batches, samples, strict=True)):
            with no_sync(self.disc, last=i == len(batches) - 1):
                with autocast(self.cfg.precision, self.dist.device):
                    d = self.disc(b.input_ids, b.attention_mask, b.positions, sampled)
                self._backward(d, counts)
            sums.add(d)
        d_norm = self._clip_and_step(d_opt, self.model.discriminator.parameters())
        return {"grad_norm_generator": g_norm, "grad_norm_discriminator": d_norm}

    def _backward(self, out: dict, counts: Named) -> None:
        # DDP averages gradients over ranks; the world size turns that back into the global sum
        loss = normalised_loss(out, counts, self.cfg.rtd_weight) * self.dist.world_size
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def _clip_and_step(self, optimizer, params) -> torch.Tensor:
        """Clip to grad_clip and step; the norm (before clipping) stays on the device. Under fp16
        the gradients are unscaled first and the step is skipped if they overflowed: fused AdamW
        (CUDA) reads the overflow flag on the device, others make the scaler read it."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        limit = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(list(params), limit)
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()
        return norm

    # reading the device: log and checkpoint steps only

    def flush(self, logger) -> None:
        """Read the values of the steps since the last flush (one transfer), stop if one of them
        diverged, and hand them to the logger."""
        if not self.pending:
            return
        keys = [k for k, v in self.pending[0].items() if isinstance(v, torch.Tensor)]
        rows = torch.stack([torch.stack([p[k].double() for k in keys]) for p in self.pending])
        first = self.step - len(self.pending) + 1
        scale = {"loss_scale": self.scaler.get_scale()} if self.scaler is not None else {}
        for offset, (pending, row) in enumerate(zip(self.pending, rows.tolist(), strict=True)):
            values = {**pending, **dict(zip(keys, row, strict=True)), **scale}
            step_tokens = int(values.pop("step_tokens"))
            self._check(first + offset, values)
            self.tokens += step_tokens
            logger.update(first + offset, self.tokens, step_tokens, values)
        self.pending.clear()

    def _check(self, step: int, values: dict[str, float]) -> None:
        """A non-finite loss stops the run; so does a non-finite gradient norm, except under
        fp16, where it means the scaler skipped the step (counted in skipped_steps, and the norm
        is left out of the averages)."""
        mlm, rtd = values["mlm_loss"], values["rtd_loss"]
        if not (math.isfinite(mlm) and math.isfinite(rtd)):
            self._diverged(step, f"loss is not finite (mlm {mlm}, rtd {rtd})")
        norms = [k for k in values if k.startswith("grad_norm")]
        overflowed = [k for k in norms if not math.isfinite(values[k])]
        if overflowed and self.scaler is None:
            which = overflowed[0].removeprefix("grad_norm").strip("_") or "the"
            self._diverged(step, f"{which} gradient norm is not finite ({values[overflowed[0]]})")
        if self.scaler is not None:
            values["skipped_steps"] = float(bool(overflowed))
            for k in overflowed:
                del values[k]

    def _diverged(self, step: int, what: str) -> None:
        last = ckpt.latest_checkpoint(self.run_dir)
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        raise TrainingDiverged(
            f"step {step}: {what}; stopping without saving, {kept}. Lower lr or raise "
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
            scaler=self.scaler,
        )

    def run(self, logger) -> None:
        """Train from the current step to cfg.steps, logging and checkpointing on the way."""
        stream = self.batches()
        self.model.train()
        while self.step < self.cfg.steps:
            self.advance(self.next_step_batches(stream), logger)

    def advance(self, batches: list[MaskedBatch], logger) -> None:
        """One step; at a log or checkpoint step, read what the device holds (and save); at an
        eval step, score the held-out set into that step's metrics line."""
        self.pending.append(self.train_step(batches))
        last = self.step == self.cfg.steps
        if self.validator is not None and (self.step % self.cfg.eval_interval == 0 or last):
            logger.record(self.validator.scores(self.model))
        checkpoint = self.step % self.cfg.checkpoint_interval == 0 or last
        if checkpoint or self.step % self.cfg.log_interval == 0:
            self.flush(logger)
        if checkpoint:
            self.save()
