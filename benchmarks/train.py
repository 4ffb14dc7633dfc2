"""RTD training throughput: tokens/s of the real trainer (masking, G, sampling, D, AdamW).

    python benchmarks/train.py                         # xsmall, mDeBERTa's 250,102-token vocab, CPU
    python benchmarks/train.py --device cuda --micro-batch 64 --seq-len 512 --preset base

Runs `train.run.train` end to end on shards of random token ids (written in the real shard
format; throughput does not depend on the text) and reports the median tokens/s over the logged
windows after the first (which holds start-up and allocator warm-up). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mdeberta.shards import write_token_shards
from mdeberta.train.config import ModelConfig, TrainConfig
from mdeberta.train.metrics import read_metrics
from mdeberta.train.run import train

MDEBERTA_VOCAB = 250102  # 250,101 pieces + [MASK]


def random_shards(
    out: str, *, vocab_size: int, seq_len: int, sequences: int, seed: int = 0
) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.integers(4, vocab_size - 1, size=(sequences, seq_len), dtype=np.uint32)
    rows[:, 0], rows[:, -1] = 1, 2
    vocab = {
        "sha256": hashlib.sha256(b"benchmark: random ids, no vocabulary").hexdigest(),
        "url": "",
        "vocab_size": vocab_size,
        "special_ids": {"pad": 0, "cls": 1, "sep": 2, "unk": 3, "mask": vocab_size - 1},
    }
    write_token_shards(out, list(rows), seq_len=seq_len, vocab=vocab, sequences_per_shard=4096)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="xsmall")
    p.add_argument("--vocab-size", type=int, default=MDEBERTA_VOCAB)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--accumulation", type=int, default=1)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--log-interval", type=int, default=3)
    p.add_argument("--sharing", default="gdes", choices=["gdes", "es", "nes"])
    p.add_argument("--decoupled", action="store_true")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--json", help="Also write the result to this file.")
    args = p.parse_args()

    world = int(os.environ.get("WORLD_SIZE", "1"))
    batch = args.micro_batch * args.accumulation * world
    cfg = TrainConfig(
        model=ModelConfig(preset=args.preset, vocab_multiple=128),
        sharing=args.sharing,
        decoupled=args.decoupled,
        steps=args.steps,
        warmup_steps=1,
        batch_size=batch,
        micro_batch_size=args.micro_batch,
        log_interval=args.log_interval,
        checkpoint_interval=args.steps - args.steps % args.log_interval or args.log_interval,
        device=args.device,
        export_at_end=False,
        progress_bar=False,
        lr=1e-4,
    )
    with tempfile.TemporaryDirectory() as tmp:
        data, run = f"{tmp}/shards", f"{tmp}/run"
        random_shards(
            data,
            vocab_size=args.vocab_size,
            seq_len=args.seq_len,
            sequences=batch * (args.steps + 1),
        )
        start = time.perf_counter()
        train(data, run, cfg)
        wall = time.perf_counter() - start
        rows = read_metrics(run)
    rates = [r["tokens_per_s"] for r in rows[1:]] or [rows[0]["tokens_per_s"]]
    device = (
        "cuda"
        if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
        else "cpu"
    )
    result = {
        "benchmark": "rtd-train",
        "device": torch.cuda.get_device_name()
        if device == "cuda"
        else f"cpu x{torch.get_num_threads()} threads",
        "precision": "bf16 autocast" if device == "cuda" else "fp32",
        "preset": args.preset,
        "vocab_size": args.vocab_size,
        "seq_len": args.seq_len,
        "global_batch": batch,
        "sharing": args.sharing,
        "decoupled": args.decoupled,
        "steps": args.steps,
        "tokens_per_s": round(statistics.median(rates), 1),
        "step_time_s": round(batch * args.seq_len / statistics.median(rates), 3),
        "wall_s_including_startup": round(wall, 1),
        "torch": torch.__version__,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
