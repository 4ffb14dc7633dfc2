"""Everything a lent GPU should measure, in one run that prints one JSON report.

    python benchmarks/gpu.py --output gpu.json     # on a GPU (an H100: under 8 minutes)
    python benchmarks/gpu.py --smoke               # tiny shapes on the CPU (the test suite runs it)

Sections (each records its own error instead of stopping the others):
  parity    our DebertaForMaskedLM vs transformers' DebertaV2ForMaskedLM with the same weights, at
            the non-pad tokens of a padded batch: fp32 within 1e-5; bf16 and fp16 (autocast, both
            sides) within TOLERANCE x the largest logit, beside HF's own error against its fp32
  speed     the real trainer's RTD step (DataLoader workers, masking, G, sampling, D, fused AdamW,
            fp16 scaler) for xsmall and base at L=512: tokens/s, peak memory and MFU (FLOPs per
            token as README.md counts them), bf16 and fp16, eager and compiled; the same step with
            transformers' DebertaV2Model (eager) as the encoder, and flashdeberta's where it
            imports (`pip install flashdeberta`; a peer row, not a dependency); the first eager
            row of each precision also runs one plain step under torch.cuda's sync debug mode
  resume    torchrun (1 GPU) trains 30 steps with checkpoints; a second run is killed with
            SIGKILL after its first checkpoint and rerun: metrics and final weights must match
  xnli      `eval xnli` in fp16 on the packaged fixture, on the model the resume section exported
Speed rows run in order of importance; none starts after --budget seconds (so: under 8 minutes).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mdeberta import resources_path
from mdeberta.hf import config_to_hf, load_state
from mdeberta.model import DebertaConfig, DebertaForMaskedLM, DebertaForRTD, EncoderOutput
from mdeberta.precision import autocast
from mdeberta.rtd import RTDModel
from mdeberta.shards import write_token_shards

MDEBERTA_VOCAB = 250102  # 250,101 pieces + [MASK]
TOLERANCE = {"fp32": 1e-5, "bf16": 3e-2, "fp16": 5e-3}  # parity: abs (fp32), x max|logit| (else)


@dataclasses.dataclass
class Plan:
    device: str = "cuda"
    parity_preset: str = "base"
    presets: tuple[str, ...] = ("base", "xsmall")
    overrides: dict = dataclasses.field(default_factory=dict)  # on every preset (smoke: tiny)
    vocab_size: int = MDEBERTA_VOCAB
    length: int = 512
    micro_batch: int = 32
    precisions: tuple[str, ...] = ("bf16", "fp16")
    compiled: tuple[bool, ...] = (False, True)
    backend: str = "inductor"
    workers: int = 2
    warmup: int = 3  # steps before timing (compiling ones included)
    timed: int = 10
    resume_steps: int = 30
    launcher: tuple[str, ...] | None = ("-m", "torch.distributed.run", "--standalone")
    """How the resume section's runs start; None: the uninterrupted ones in this process, the one
    to kill as `python -m mdeberta.train` (smoke: one process start instead of three)."""
    xnli_epochs: float = 2.0


SMOKE = Plan(
    device="cpu",
    parity_preset="tiny",
    presets=("tiny",),
    overrides=dict(num_hidden_layers=1, position_buckets=32, max_relative_positions=64),
    vocab_size=1000,
    length=32,
    micro_batch=4,
    compiled=(False,),
    backend="aot_eager",
    workers=0,
    warmup=1,
    timed=2,
    resume_steps=6,
    launcher=None,
    xnli_epochs=0.2,
)


# FLOPs and the peer encoders


def flops_per_token(disc: DebertaConfig, gen: DebertaConfig, length: int, mask_prob=0.15) -> float:
    """Training FLOPs per token, README.md's count: 6 x (non-embedding parameters of D and G, the
    output projection at the masked share of tokens, attention's L^2 and c2p/p2c terms)."""
    macs = 0.0
    for cfg in (disc, gen):
        H, F = cfg.hidden_size, cfg.intermediate_size
        R = min(2 * length - 1, 2 * cfg.relative_span)  # relative rows in reach
        macs += cfg.num_hidden_layers * (4 * H * H + 2 * H * F + 2 * length * H + 2 * R * H)
        macs += H * H  # the RTD head's dense, or the MLM transform
    macs += mask_prob * gen.hidden_size * gen.vocab_size
    return 6 * macs


class PeerEncoder(nn.Module):
    """A transformers-style DebertaV2Model (HF's or flashdeberta's) behind our encoder's call, so
    our heads, sharing and trainer run on it unchanged: only the encoder differs."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder_model = encoder

    @property
    def embeddings(self) -> nn.Module:
        return self.encoder_model.embeddings

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, token_type_ids=None):
        out = self.encoder_model(
            input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds
        )
        return EncoderOutput(out.last_hidden_state)


def peer_class(kind: str):
    if kind == "hf":
        from transformers import DebertaV2Model

        return DebertaV2Model
    from flashdeberta import FlashDebertaV2Model  # ImportError: the row is skipped

    return FlashDebertaV2Model


def hf_config(cfg: DebertaConfig):
    import transformers

    return transformers.DebertaV2Config(**config_to_hf(cfg, "DebertaV2Model"))


# parity


def section_parity(plan: Plan, device: torch.device, tmp: Path, deadline: float) -> dict:
    import transformers

    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    torch.backends.cudnn.allow_tf32 = False
    cfg = DebertaConfig.preset(plan.parity_preset, vocab_size=8192, **plan.overrides)
    torch.manual_seed(0)
    hf_cfg = transformers.DebertaV2Config(**config_to_hf(cfg, "DebertaV2ForMaskedLM"))
    hf = transformers.DebertaV2ForMaskedLM(hf_cfg).to(device).eval()
    ours = DebertaForMaskedLM(cfg)
    load_state(ours, hf.state_dict())
    ours = ours.to(device).eval()
    ids = torch.randint(4, cfg.vocab_size, (2, plan.length), device=device)
    mask = torch.ones_like(ids)
    mask[1, plan.length // 2 :] = 0  # one full row, one half padding
    keep = mask.bool()
    logits = {}
    with torch.no_grad():
        for precision in ("fp32", "bf16", "fp16"):
            with autocast(precision, device):
                logits[precision] = [
                    m(input_ids=ids, attention_mask=mask).logits.float()[keep] for m in (ours, hf)
                ]
    out = {"config": plan.parity_preset, "length": plan.length}
    for precision, (a, b) in logits.items():
        diff = (a - b).abs().max().item()
        scale = 1.0 if precision == "fp32" else logits["fp32"][1].abs().max().item()
        row = {"max_abs_diff": diff, "tolerance": TOLERANCE[precision] * scale}
        row["within"] = diff <= row["tolerance"]
        if precision != "fp32":  # context: how far each is from fp32
            row["ours_vs_fp32"] = (a - logits["fp32"][0]).abs().max().item()
            row["hf_vs_fp32"] = (b - logits["fp32"][1]).abs().max().item()
        out[precision] = row
    return out


# speed


def random_shards(out: Path, plan: Plan) -> str:
    rng = np.random.default_rng(0)
    rows = rng.integers(4, plan.vocab_size - 1, size=(1024, plan.length), dtype=np.uint32)
    rows[:, 0], rows[:, -1] = 1, 2  # [CLS] ... [SEP]
    special = {"pad": 0, "cls": 1, "sep": 2, "unk": 3, "mask": plan.vocab_size - 1}
    vocab = {"sha256": hashlib.sha256(b"random ids").hexdigest(), "url": ""}
    vocab |= {"vocab_size": plan.vocab_size, "special_ids": special}
    write_token_shards(str(out), list(rows), seq_len=plan.length, vocab=vocab)
    return str(out)


def build_rtd(kind: str, cfg, vocab: dict, length: int) -> RTDModel:
    from mdeberta.train.build import build_model, model_configs

    disc_cfg, gen_cfg = model_configs(cfg, vocab, length)
    if kind == "ours":
        return build_model(cfg, disc_cfg, gen_cfg, vocab)
    encoder = peer_class(kind)
    generator, discriminator = DebertaForMaskedLM(gen_cfg), DebertaForRTD(disc_cfg)
    generator.deberta = PeerEncoder(encoder(hf_config(gen_cfg)))
    discriminator.deberta = PeerEncoder(encoder(hf_config(disc_cfg)))
    specials = sorted(set(vocab["special_ids"].values()))
    return RTDModel(
        generator,
        discriminator,
        sharing=cfg.sharing,
        special_ids=specials,
        vocab_size=vocab["vocab_size"],
    )


def speed_row(plan, shards, device, tmp, *, kind, preset, precision, compiled, sync_check) -> dict:
    from mdeberta.shard_reader import ShardDataset
    from mdeberta.train import distributed
    from mdeberta.train.build import build_optimizers, model_configs
    from mdeberta.train.config import ModelConfig, TrainConfig
    from mdeberta.train.loop import Trainer
    from mdeberta.train.metrics import MetricsLogger

    B, L = plan.micro_batch, plan.length
    cfg = TrainConfig(
        model=ModelConfig(preset=preset, **plan.overrides),
        precision=precision,
        compile=compiled,
        compile_backend=plan.backend,
        steps=10**6,
        warmup_steps=1,
        batch_size=B,
        micro_batch_size=B,
        log_interval=10**5,
        checkpoint_interval=10**5,
        num_workers=plan.workers,
        device=device.type,
        progress_bar=False,
        export_at_end=False,
    )
    dataset = ShardDataset(shards, batch_size=B)
    vocab = dataset.manifest["vocab"]
    model = build_rtd(kind, cfg, vocab, L).to(device)
    optimizers, schedulers = build_optimizers(cfg, model)
    run_dir = str(tmp / f"speed-{kind}-{preset}-{precision}-{compiled}")
    trainer = Trainer(
        cfg, model, optimizers, schedulers, dataset, distributed.setup(device.type), run_dir
    )
    logger = MetricsLogger(run_dir, interval=10**5, total_steps=cfg.steps, enabled=False)
    stream = trainer.batches()
    model.train()
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    row = {"model": kind, "config": preset, "precision": precision, "compiled": compiled}
    try:
        start = time.perf_counter()
        for _ in range(plan.warmup):
            trainer.advance(trainer.next_step_batches(stream), logger)
        sync()
        row["warmup_s"] = time.perf_counter() - start
        if sync_check and device.type == "cuda":
            batches = trainer.next_step_batches(stream)
            torch.cuda.set_sync_debug_mode("error")
            try:
                trainer.advance(batches, logger)
                row["step_without_sync"] = True
            except RuntimeError as e:
                row["step_without_sync"] = f"no: {e}".splitlines()[0]
            finally:
                torch.cuda.set_sync_debug_mode(0)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(plan.timed):
            trainer.advance(trainer.next_step_batches(stream), logger)
        sync()
        seconds = time.perf_counter() - start
    finally:
        stream.close()
    tokens_per_s = plan.timed * B * L / seconds
    flops = flops_per_token(*model_configs(cfg, vocab, L), L)
    row |= {"tokens_per_s": tokens_per_s, "step_s": seconds / plan.timed}
    row["gflop_per_token"] = flops / 1e9
    if device.type == "cuda":
        row["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
        row["mfu"] = tokens_per_s * flops / (PEAK_TFLOPS * 1e12)
    return row


PEAK_TFLOPS = 989.0  # H100 SXM, dense bf16/fp16 (--peak-tflops)


def section_speed(plan: Plan, device: torch.device, tmp: Path, deadline: float) -> dict:
    shards = random_shards(tmp / "random-shards", plan)
    jobs = []
    for preset in plan.presets:
        for precision in plan.precisions:
            jobs.append(dict(kind="ours", preset=preset, precision=precision, compiled=False))
            jobs.append(dict(kind="hf", preset=preset, precision=precision, compiled=False))
            if True in plan.compiled:
                jobs.append(dict(kind="ours", preset=preset, precision=precision, compiled=True))
            jobs.append(
                dict(kind="flashdeberta", preset=preset, precision=precision, compiled=False)
            )
    rows, checked = [], set()
    for job in jobs:
        head = {"model": job["kind"], "config": job["preset"]}
        head |= {"precision": job["precision"], "compiled": job["compiled"]}
        if time.monotonic() > deadline:
            rows.append({**head, "skipped": "time budget"})
            continue
        check = job["kind"] == "ours" and not job["compiled"] and job["precision"] not in checked
        checked |= {job["precision"]} if check else set()
        try:
            rows.append(speed_row(plan, shards, device, tmp, **job, sync_check=check))
        except ImportError as e:
            rows.append({**head, "skipped": f"not installed ({e})"})
        except Exception as e:  # one row's failure (out of memory, a compile error) is a result
            rows.append({**head, "error": f"{type(e).__name__}: {e}".splitlines()[0]})
        finally:
            torch._dynamo.reset()
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    for row in rows:  # ratios to HF eager on the same step, same config and precision
        hf = [
            r
            for r in rows
            if r.get("model") == "hf"
            and "tokens_per_s" in r
            and (r["config"], r["precision"]) == (row.get("config"), row.get("precision"))
        ]
        if hf and "tokens_per_s" in row:
            row["speedup_vs_hf_eager"] = row["tokens_per_s"] / hf[0]["tokens_per_s"]
    return {"length": plan.length, "micro_batch": plan.micro_batch, "rows": rows}


# resume: torchrun, kill -9, rerun


def fixture_lines() -> list[str]:
    """The text of the packaged XNLI fixture (premises and hypotheses)."""
    folder = resources_path("xnli")
    lines = []
    for row in (folder / "xnli.dev.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        lines += row.split("\t")[6:8]
    for row in (folder / "multinli.train.jsonl").read_text(encoding="utf-8").splitlines():
        obj = json.loads(row)
        lines += [obj["sentence1"], obj["sentence2"]]
    return lines


def fixture_vocab_and_shards(tmp: Path, seq_len: int) -> str:
    """A small SentencePiece vocabulary (with HF tokenizer files) and token shards of the
    fixture's text, so that the run exports a model `eval xnli` can tokenize for."""
    import io

    import sentencepiece as spm

    from mdeberta import io as mio
    from mdeberta.vocab.tokenizer import SPECIAL_PIECES, special_ids, write_tokenizer_files

    lines, folder = fixture_lines(), tmp / "vocab"
    model = io.BytesIO()
    ids = dict(zip(("pad_id", "bos_id", "eos_id", "unk_id"), range(4), strict=True))
    names = ("pad_piece", "bos_piece", "eos_piece", "unk_piece")
    pieces = dict(zip(names, SPECIAL_PIECES, strict=True))
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=1000, minloglevel=2,
        hard_vocab_limit=False, byte_fallback=True, num_threads=1, **ids, **pieces,
    )  # fmt: skip
    folder.mkdir()
    (folder / "spm.model").write_bytes(model.getvalue())
    write_tokenizer_files(str(folder), model.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    vocab = {"sha256": mio.sha256_file(str(folder / "spm.model")), "url": str(folder)}
    vocab |= {
        "vocab_size": sp.get_piece_size() + 1,
        "special_ids": special_ids(sp.get_piece_size()),
    }
    stream = [t for ids in sp.encode(lines) for t in [*ids, 2]]
    body = seq_len - 2
    rows = [
        np.array([1, *stream[i : i + body], 2], dtype=np.uint32)
        for i in range(0, len(stream) - body + 1, body)
    ]
    write_token_shards(str(tmp / "shards"), rows, seq_len=seq_len, vocab=vocab)
    return str(tmp / "shards")


def resume_settings(plan: Plan) -> list[str]:
    return [
        "model.preset=tiny", "model.position_buckets=32", "model.max_relative_positions=64",
        "model.vocab_multiple=8", f"steps={plan.resume_steps}", "batch_size=16",
        "micro_batch_size=8", "lr=5e-3", "warmup_steps=3", "log_interval=2",
        f"checkpoint_interval={plan.resume_steps // 3 // 2 * 2}", "keep_checkpoints=5",
        f"precision={'fp16' if plan.device == 'cuda' else 'fp32'}", "progress_bar=false",
        "threads=1",  # in-process and killed runs alike, whatever OMP_NUM_THREADS says
    ]  # fmt: skip


def start_training(plan: Plan, shards: str, output: str) -> subprocess.Popen:
    """`python -m mdeberta.train` (under the plan's launcher: torchrun, 1 process) in the
    background."""
    args = [sys.executable, *(plan.launcher or ()), "-m", "mdeberta.train", "--data", shards]
    args += ["--output", output]
    for item in resume_settings(plan):
        args += ["--set", item]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def train_to_the_end(plan: Plan, shards: str, output: str) -> None:
    if plan.launcher is None:
        from mdeberta.train.config import load_train_config
        from mdeberta.train.run import train

        train(shards, output, load_train_config(None, resume_settings(plan)))
        return
    proc = start_training(plan, shards, output)
    _, errors = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"training failed ({proc.returncode}): {errors.decode()[-2000:]}")


def section_resume(plan: Plan, device: torch.device, tmp: Path, deadline: float) -> dict:
    from mdeberta.train.checkpoint import list_checkpoints
    from mdeberta.train.metrics import TIMING_KEYS, read_metrics

    shards = fixture_vocab_and_shards(tmp, seq_len=32 if plan.device == "cpu" else 128)
    reference, resumed = str(tmp / "reference"), tmp / "resumed"
    train_to_the_end(plan, shards, reference)
    proc = start_training(plan, shards, str(resumed))
    while not list_checkpoints(str(resumed)) and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = [step for step, _ in list_checkpoints(str(resumed))]
    train_to_the_end(plan, shards, str(resumed))  # the same command resumes
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]  # noqa: E731
    a, b = strip(read_metrics(reference)), strip(read_metrics(str(resumed)))
    final = f"checkpoints/step-{plan.resume_steps:08d}/model.safetensors"
    pairs = zip(a, b, strict=True)
    differences = [abs(x[k] - y[k]) / max(abs(x[k]), 1e-12) for x, y in pairs for k in x]
    same_weights = (Path(reference) / final).read_bytes() == (resumed / final).read_bytes()
    return {
        "launcher": " ".join(plan.launcher or ("python",)),
        "steps": plan.resume_steps,
        "killed_after_checkpoints": killed_at,
        "killed_before_the_end": bool(killed_at) and killed_at[-1] < plan.resume_steps,
        "identical_metrics": a == b,
        "max_relative_difference": max(differences, default=0.0),
        "identical_final_weights": same_weights,
    }


# eval xnli in fp16


def section_xnli(plan: Plan, device: torch.device, tmp: Path, deadline: float) -> dict:
    from mdeberta.eval.config import FinetuneConfig, XnliConfig
    from mdeberta.eval.xnli import run_xnli

    model = tmp / "reference" / "hf" / "discriminator"  # exported by the resume section
    fixture = str(resources_path("xnli"))
    finetune = FinetuneConfig(
        epochs=plan.xnli_epochs, lr=1e-4, batch_size=16, max_length=128, precision="fp16"
    )
    results = run_xnli(
        XnliConfig(
            model=str(model),
            output=str(tmp / "xnli"),
            train=fixture,
            dev=fixture,
            test=fixture,
            languages="en,de,sw" if plan.device == "cpu" else "xnli",
            finetune=finetune,
        )
    )
    history = results.get("selection", {}).get("history", [])
    return {
        "precision": "fp16",
        "average": results["average"],
        "accuracy": results["accuracy"],
        "skipped_steps": sum(h.get("skipped_steps", 0) for h in history),
    }


SECTIONS = {
    "parity": section_parity,
    "resume": section_resume,
    "xnli": section_xnli,
    "speed": section_speed,
}


def main(argv: list[str] | None = None) -> dict:
    global PEAK_TFLOPS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU")
    parser.add_argument("--output", help="also write the report to this JSON file")
    parser.add_argument("--budget", type=float, default=360.0, help="seconds before rows skip")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma list")
    parser.add_argument("--peak-tflops", type=float, default=PEAK_TFLOPS, help="for MFU")
    args = parser.parse_args(argv)
    PEAK_TFLOPS = args.peak_tflops
    plan = SMOKE if args.smoke else Plan()
    if plan.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device: run on a GPU, or pass --smoke")
    device = torch.device(plan.device)
    start = time.monotonic()
    report = {
        "smoke": args.smoke,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "peak_tflops": PEAK_TFLOPS,
    }
    with tempfile.TemporaryDirectory() as folder:
        for name in args.sections.split(","):
            began = time.monotonic()
            try:
                report[name] = SECTIONS[name](plan, device, Path(folder), start + args.budget)
            except Exception as e:  # noqa: BLE001 (the report says what failed; the rest still runs)
                report[name] = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:500]}
            report[name]["seconds"] = round(time.monotonic() - began, 1)
    report["seconds"] = round(time.monotonic() - start, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
