"""Embedding sharing at toy scale: GDES vs ES vs NES on the packaged sample corpus.

    python benchmarks/sharing.py --work /tmp/sharing            # makes the data, trains 3 runs
    python benchmarks/sharing.py --data SHARDS --work DIR --steps 300 --output docs/sharing.md

Without --data the sample corpus (mdeberta/resources/sample) goes through the real pipeline
(`mdeberta clean`, `build-vocab`, `shard`) into WORK/data. Each mode trains the same toy model
with the same seed and data; the script records final losses, RTD accuracy and the average
pairwise cosine similarity of E_G and E_D (the DeBERTa-v3 paper's figure 2) in a markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

from mdeberta import resources_path
from mdeberta.shards import read_shards_manifest
from mdeberta.train.analyze import analyze_run
from mdeberta.train.config import load_train_config
from mdeberta.train.metrics import read_metrics
from mdeberta.train.run import train

REPO = Path(__file__).resolve().parents[1]

MODES = ("gdes", "es", "nes")
TOY = [
    "model.hidden_size=64",
    "model.num_attention_heads=4",
    "model.intermediate_size=256",
    "batch_size=16",
    "micro_batch_size=16",
    "lr=2e-3",
    "progress_bar=false",
    "export_at_end=false",
]


def make_data(work: Path, vocab_size: int, seq_len: int) -> str:
    """Sample corpus -> clean -> vocabulary -> shards with the project's own commands."""
    data = work / "data"
    sample = sorted(str(p) for p in resources_path("sample").glob("*.txt.xz"))
    steps = [
        ["clean", *sample, "--output", str(data / "clean")],
        [
            "build-vocab",
            "--corpus",
            str(data / "clean"),
            "--output",
            str(data / "vocab"),
            "--vocab-size",
            str(vocab_size),
        ],
        [
            "shard",
            "--corpus",
            str(data / "clean"),
            "--vocab",
            str(data / "vocab"),
            "--output",
            str(data / "shards"),
            "--seq-len",
            str(seq_len),
        ],
    ]
    for args in steps:
        if (data / args[args.index("--output") + 1].split("/")[-1] / "manifest.json").exists():
            continue
        subprocess.run([sys.executable, "-m", "mdeberta", *args], check=True, cwd=REPO)
    return str(data / "shards")


def tail_mean(rows: list[dict], key: str, n: int = 5) -> float:
    part = rows[-n:]
    return sum(r[key] for r in part) / len(part)


def run_mode(data: str, work: Path, mode: str, steps: int, seed: int) -> dict:
    overrides = [
        *TOY,
        f"sharing={mode}",
        f"steps={steps}",
        f"seed={seed}",
        f"warmup_steps={steps // 10}",
        f"log_interval={max(1, steps // 30)}",
        f"checkpoint_interval={steps}",
    ]
    cfg = load_train_config(str(REPO / "train/configs/tiny.toml"), overrides)
    start = time.perf_counter()
    out = str(work / f"run-{mode}")
    train(data, out, cfg)
    rows = read_metrics(out)
    sim = analyze_run(out)
    return {
        "sharing": mode,
        "steps": steps,
        "mlm_loss": round(tail_mean(rows, "mlm_loss"), 4),
        "rtd_loss": round(tail_mean(rows, "rtd_loss"), 4),
        "rtd_accuracy": round(tail_mean(rows, "rtd_accuracy"), 4),
        "mlm_accuracy": round(tail_mean(rows, "mlm_accuracy"), 4),
        "cos_E_G": round(sim["E_G"], 4),
        "cos_E_D": round(sim["E_D"], 4),
        "wall_s": round(time.perf_counter() - start, 1),
        "config": {
            "model": dataclasses.asdict(cfg.model),
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "rtd_weight": cfg.rtd_weight,
        },
    }


def describe_data(data: str) -> str:
    m = read_shards_manifest(data)
    return (
        f"{m['num_sequences']} sequences of {m['seq_len']} tokens, vocabulary of "
        f"{m['vocab']['vocab_size']} ids"
    )


def markdown(results: list[dict], data: str) -> str:
    c = results[0]["config"]
    lines = [
        "# Embedding sharing at toy scale (benchmarks/sharing.py)",
        "",
        f"Same data ({describe_data(data)}), seed and toy model for each mode: discriminator "
        f"{c['model']['preset']} preset with hidden {c['model']['hidden_size']}, "
        f"generator half its depth, batch {c['batch_size']}, lr {c['lr']}, λ {c['rtd_weight']}, "
        f"{results[0]['steps']} steps on CPU. Losses and accuracies are the mean of the last "
        "5 logged windows; cos E_G / cos E_D is the average pairwise cosine similarity of the "
        "real-token rows of each table (the DeBERTa-v3 paper's figure 2, `mdeberta "
        "analyze-embeddings`). One seed at toy scale: it shows what each mode does to the "
        "tables, not which mode is better downstream. Wall times are on a shared 2-core CPU.",
        "",
        "| sharing | MLM loss | RTD loss | RTD acc | MLM acc | cos E_G | cos E_D | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['sharing']} | {r['mlm_loss']:.3f} | {r['rtd_loss']:.3f} | "
            f"{r['rtd_accuracy']:.3f} | {r['mlm_accuracy']:.3f} | {r['cos_E_G']:.4f} | "
            f"{r['cos_E_D']:.4f} | {r['wall_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", required=True, help="Folder for the data and the three runs.")
    p.add_argument("--data", help="Token shards to use instead of making them from the sample.")
    p.add_argument("--vocab-size", type=int, default=4000)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", help="Write the markdown table here (e.g. docs/sharing.md).")
    args = p.parse_args()
    work = Path(args.work)
    data = args.data or make_data(work, args.vocab_size, args.seq_len)
    results = [run_mode(data, work, mode, args.steps, args.seed) for mode in MODES]
    print(json.dumps([{k: v for k, v in r.items() if k != "config"} for r in results], indent=2))
    table = markdown(results, data)
    print(table)
    if args.output:
        Path(args.output).write_text(table)


if __name__ == "__main__":
    main()
