"""A training run end to end: run directory, resume, the loop, export and the run manifest.

    {run}/run.json        resolved config, model configs, data and vocabulary fingerprints
    {run}/metrics.jsonl   {run}/curves.png   {run}/checkpoints/   {run}/hf/{discriminator,generator}
    {run}/manifest.json   (kind "run", written last when training completes)

Rerunning the same command on a run directory with a checkpoint resumes from its newest one that
verifies (train/checkpoint.py); `fresh` starts over instead. Rank 0 holds the run directory's lock
for the whole run. A continued run's manifest is removed before it trains, and written again only
when it completes, so a run killed midway never reads as complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
import warnings
from typing import Any

import torch

from mdeberta import io
from mdeberta.config import ConfigError, config_to_dict
from mdeberta.lock import output_lock
from mdeberta.manifest import MANIFEST, invalidate, manifest_sha256, write_manifest
from mdeberta.shard_reader import ShardDataset
from mdeberta.threads import apply_threads
from mdeberta.train import checkpoint as ckpt
from mdeberta.train import distributed
from mdeberta.train.build import (
    RUN_INFO,
    build_model,
    build_optimizers,
    load_model_configs,
    model_configs,
    round_up,
)
from mdeberta.train.config import TrainConfig
from mdeberta.train.export import export_run
from mdeberta.train.loop import Trainer
from mdeberta.train.metrics import CURVES, METRICS, MetricsLogger, plot_curves, read_metrics
from mdeberta.train.pretrained import discriminator_dir, init_from_pretrained, pretrained_configs
from mdeberta.train.resize import VocabExtension, check_rows, find_extension
from mdeberta.train.validate import Validator

FORMAT_VERSION = 1
# settings a resumed run may change; anything else must match the checkpoint's run
MUTABLE = {"steps", "lr", "discriminator_lr", "warmup_steps", "warmup_max_fraction", "grad_clip",
           "log_interval", "checkpoint_interval", "keep_checkpoints", "num_workers", "threads",
           "progress_bar", "export_at_end", "init_from", "device", "fresh", "verify_data",
           "compile", "compile_backend", "eval_data", "eval_interval",
           "eval_sequences"}  # fmt: skip
# what a run writes into its directory: what `fresh` removes (nothing else there is touched)
RUN_FILES = (MANIFEST, RUN_INFO, METRICS, CURVES, ckpt.CHECKPOINTS, "hf", "tensorboard")


def _new_run_info(
    cfg: TrainConfig, data: str, dataset, world_size: int, vocab_dir: str | None
) -> tuple[dict[str, Any], VocabExtension | None]:
    """run.json's content, and the vocabulary extension --init-from grows the model to, if any."""
    vocab = dataset.manifest["vocab"]
    extension = None
    if cfg.init_from:
        folder = discriminator_dir(cfg.init_from)
        extension = find_extension(folder, dataset.manifest, data, vocab_dir)
        disc, gen = pretrained_configs(
            cfg.init_from, cfg.model.generator_layers, cfg.model.overrides()
        )
        if extension is not None:  # new rows for the new pieces, rounded as a fresh model's
            check_rows(extension, disc.vocab_size, folder)
            rows = max(disc.vocab_size, round_up(dataset.vocab_size, cfg.model.vocab_multiple))
            disc, gen = disc.replace(vocab_size=rows), gen.replace(vocab_size=rows)
        if disc.pad_token_id != dataset.special_ids["pad"]:
            raise ConfigError(
                f"--init-from {cfg.init_from}: pad id {disc.pad_token_id}, the "
                f"shards use {dataset.special_ids['pad']}"
            )
        if disc.vocab_size < dataset.vocab_size:
            raise ConfigError(
                f"--init-from {cfg.init_from}: {disc.vocab_size} embedding rows "
                f"cannot hold the shards' {dataset.vocab_size} ids"
            )
    else:
        disc, gen = model_configs(cfg, vocab, dataset.seq_len)
    info = {
        "format_version": FORMAT_VERSION,
        "config": config_to_dict(cfg),
        "data": str(data),
        "shards_identity": dataset.identity,
        "seq_len": dataset.seq_len,
        "vocab": vocab,
        "world_size": world_size,
        "discriminator": dataclasses.asdict(disc),
        "generator": dataclasses.asdict(gen),
    }
    if extension is not None:
        info["vocab_extension"] = extension.summary()
    return info, extension


def _check_resume(saved: dict[str, Any], cfg: TrainConfig, dataset, run_dir: str) -> None:
    """A resumed run must read shards of the same vocabulary and keep its training settings."""
    dataset.check_vocab(saved["vocab"]["sha256"])
    if "shards_identity" in saved:  # content: shards made again with the same bytes are the same
        same = saved["shards_identity"] == dataset.identity
    else:  # a run.json from before identities recorded the manifest file's sha256
        same = saved.get("shards_manifest_sha256") == manifest_sha256(dataset.url)
    if not same:
        raise ConfigError(
            f"{run_dir} was trained on other token shards ({saved['data']}); its data position "
            "means nothing in these. Use a new --output to train on them, or --fresh to start "
            "this run over"
        )
    old, new = saved["config"], config_to_dict(cfg)
    changed = sorted(k for k in old if k not in MUTABLE and old[k] != new.get(k))
    if changed:
        detail = ", ".join(f"{k}: {old[k]!r} -> {new.get(k)!r}" for k in changed)
        raise ConfigError(
            f"{run_dir} has a checkpoint made with other settings ({detail}). Resume with the "
            f"run's config ({io.join(run_dir, RUN_INFO)}) or use a new --output. Only "
            f"{', '.join(sorted(MUTABLE))} may change on resume"
        )


def train(data: str, output: str, cfg: TrainConfig, *, vocab: str | None = None) -> str:
    """Train (or resume) the run in `output` on the token shards in `data`; return `output`."""
    env = distributed.setup(cfg.device)
    try:
        with output_lock(output) if env.is_main else contextlib.nullcontext():
            _train(data, output, cfg, vocab, env)
    finally:
        distributed.teardown()
    return output


def _train(data: str, output: str, cfg: TrainConfig, vocab: str | None, env) -> None:
    dataset = ShardDataset(
        data,
        seed=cfg.seed,
        rank=env.rank,
        world_size=env.world_size,
        batch_size=cfg.micro_batch_size,
    )
    if vocab is not None:
        dataset.check_vocab(vocab)
    cfg.accumulation_steps(env.world_size)  # fail on a bad split before any work
    if cfg.verify_data:
        dataset.verify_all(env.rank, env.world_size)
    if cfg.warmup() < cfg.warmup_steps and env.is_main:
        print(
            f"mdeberta: warm-up clipped to {cfg.warmup()} steps (warmup_max_fraction "
            f"{cfg.warmup_max_fraction} of {cfg.steps}; warmup_steps is {cfg.warmup_steps})",
            file=sys.stderr,
        )
    if cfg.fresh and env.is_main:  # the inputs are sound: only now remove the old run
        start_over(output)
    env.barrier()
    info_url = io.join(output, RUN_INFO)
    resuming = bool(ckpt.list_checkpoints(output))
    if resuming:
        info = io.read_json(info_url)
        _check_resume(info, cfg, dataset, output)
        info["config"] = config_to_dict(cfg)
        info["shards_identity"] = dataset.identity
        extension = None
    else:
        info, extension = _new_run_info(cfg, data, dataset, env.world_size, vocab)
    width = info["discriminator"]["hidden_size"]
    apply_threads(cfg.threads, hidden_size=width, workers=cfg.num_workers)
    trainer = _build_trainer(cfg, info, dataset, env, output, resuming, extension)
    if env.is_main:
        io.makedirs(output)
        invalidate(output)  # continuing: incomplete until the manifest is written again
        io.write_json(info_url, info)
    env.barrier()
    logger = MetricsLogger(
        output,
        interval=cfg.log_interval,
        total_steps=cfg.steps,
        start_step=trainer.step,
        enabled=env.is_main,
        progress_bar=cfg.progress_bar,
    )
    try:
        trainer.run(logger)
    finally:
        logger.close()
    if env.is_main:
        _finish(output, cfg, info, trainer, data)
    env.barrier()


def start_over(output: str) -> None:
    """Remove what an earlier run wrote into `output` (RUN_FILES only), saying what went."""
    gone = [name for name in RUN_FILES if io.exists(io.join(output, name))]
    if not gone:
        return
    steps = [url.rsplit("/", 1)[-1] for _, url in ckpt.list_checkpoints(output)]
    fs, path = io.url_to_fs(output)
    for name in gone:
        fs.rm(f"{path}/{name}", recursive=True)
    listed = {ckpt.CHECKPOINTS: f"{ckpt.CHECKPOINTS}/ ({', '.join(steps)})"} if steps else {}
    what = ", ".join(listed.get(name, name) for name in gone)
    print(f"mdeberta: --fresh: removed the earlier run from {output}: {what}", file=sys.stderr)


def _build_trainer(cfg, info, dataset, env, output, resuming: bool, extension) -> Trainer:
    disc_cfg, gen_cfg = load_model_configs(info)
    model = build_model(cfg, disc_cfg, gen_cfg, info["vocab"])
    if not resuming and cfg.init_from:
        message = init_from_pretrained(model, cfg.init_from, extension)
        if env.is_main:
            print(message, file=sys.stderr)
    model.to(env.device)
    optimizers, schedulers = build_optimizers(cfg, model)
    torch.manual_seed(cfg.seed * 1000 + env.rank)  # dropout differs per rank, reproducibly
    trainer = Trainer(cfg, model, optimizers, schedulers, dataset, env, output)
    if cfg.eval_data:
        trainer.validator = Validator(
            cfg.eval_data, cfg, env, dataset.vocab_sha256, trainer.mask_args
        )
    if resuming:
        load = functools.partial(
            ckpt.load_checkpoint,
            model=model,
            optimizers=optimizers,
            schedulers=schedulers,
            rank=env.rank,
            world_size=env.world_size,
            scaler=trainer.scaler,
        )
        url, meta, mine = ckpt.resume(output, load, rank=env.rank, barrier=env.barrier)
        trainer.step, trainer.tokens = meta["step"], meta["tokens"]
        _apply_schedule(cfg, optimizers, schedulers)
        trainer.start_position = (mine.epoch, mine.consumed)
        ckpt.restore_rng(mine.rng)
        if env.is_main:
            print(f"resuming {output} from {url} (step {meta['step']})", file=sys.stderr)
    return trainer


def _apply_schedule(cfg: TrainConfig, optimizers: list, schedulers: list) -> None:
    """Peak rates from the current config, not the checkpoint's (so lr may change on resume);
    the same arithmetic as LambdaLR.step, so an unchanged lr resumes bit for bit."""
    peaks = [cfg.lr, cfg.discriminator_lr or cfg.lr][: len(optimizers)]
    for optimizer, scheduler, peak in zip(optimizers, schedulers, peaks, strict=True):
        scheduler.base_lrs = [peak for _ in optimizer.param_groups]
        factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
        for group in optimizer.param_groups:
            group["initial_lr"] = peak
            group["lr"] = peak * factor
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def _finish(output: str, cfg: TrainConfig, info: dict, trainer: Trainer, data: str) -> None:
    """Curves, the HF export and the run manifest (last), on rank 0. The manifest lists the final
    checkpoint's files: what the run made, and so its identity."""
    plot_curves(output)
    exported = {}
    if cfg.export_at_end:
        try:
            exported = export_run(output, io.join(output, "hf"))
        except Exception as e:  # the checkpoints are safe; `mdeberta export` can retry
            warnings.warn(f"export failed ({e}); run `mdeberta export {output}`", stacklevel=2)
    final = f"{ckpt.CHECKPOINTS}/{ckpt.checkpoint_name(trainer.step)}"
    records = ckpt.read_meta(io.join(output, final))["files"]
    metrics = read_metrics(output)
    write_manifest(
        output,
        "run",
        FORMAT_VERSION,
        config_to_dict(cfg),
        inputs={"shards": data},
        files={f"{final}/{name}": record for name, record in records.items()},
        extra={
            "steps": trainer.step,
            "tokens": trainer.tokens,
            "world_size": trainer.dist.world_size,
            "exported": exported,
            "final_metrics": metrics[-1] if metrics else {},
            "vocab": info["vocab"],
        },
    )
