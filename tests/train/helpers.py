"""Helpers of the trainer tests: a tiny vocabulary and token shards in the real formats, runs.

The text is the packaged sample corpus (mdeberta/resources/sample) when it is installed, else a
small synthetic multilingual text; a vocabulary of a few hundred pieces is trained on it here.
"""

from __future__ import annotations

import lzma
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from mdeberta import resources_path
from tests.tiny_vocab import write_tiny_vocab

SEQ_LEN = 32
torch.set_num_threads(1)  # 2 shared cores: more threads only contend
REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "train" / "configs" / "tiny.toml")
# quick settings on top of tiny.toml: a few steps, no bar, checkpoints often
QUICK = [
    "steps=12",
    "log_interval=2",
    "checkpoint_interval=4",
    "progress_bar=false",
    "warmup_steps=2",
    "export_at_end=false",
]


def sample_lines(max_lines: int = 3000) -> list[str]:
    """Lines of the packaged sample corpus, or a synthetic text when it is not there yet."""
    folder = resources_path("sample")
    files = sorted(folder.glob("*.txt.xz")) if folder.is_dir() else []
    lines: list[str] = []
    for path in files[:6]:
        with lzma.open(path, "rt", encoding="utf-8") as f:
            lines += [
                line.strip()
                for line, _ in zip(f, range(max_lines // 6), strict=False)
                if line.strip()
            ]
    if lines:
        return lines
    rng = random.Random(0)
    words = (
        "the cat sat on a mat . der Hund lief über die Wiese . le chat dort sur le lit . "
        "el perro come pan . una casa grande y blanca . a dog and a cat play"
    ).split()
    return [
        " ".join(rng.choice(words) for _ in range(rng.randint(5, 15))) for _ in range(max_lines)
    ]


def make_vocab(folder: Path, lines: list[str], vocab_size: int = 300) -> dict:
    """spm.model + HF tokenizer files + a "vocabulary" manifest; returns the shards' vocab block."""
    return write_tiny_vocab(
        folder,
        lines,
        vocab_size,
        tokenizer_files=True,
        seed_sentencepiece_size=5000,
        hard_vocab_limit=False,
        num_threads=1,
    )


def pack(vocab_dir: Path, lines: list[str], seq_len: int = SEQ_LEN) -> list[np.ndarray]:
    """[CLS] ... [SEP] rows cut from one token stream of all lines (as the shard pipeline)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(vocab_dir / "spm.model"))
    stream: list[int] = []
    for ids in sp.encode(lines):
        stream += ids + [2]
    body = seq_len - 2
    return [
        np.array([1, *stream[i : i + body], 2], dtype=np.uint32)
        for i in range(0, len(stream) - body + 1, body)
    ]


def run_train(
    data: str, output: str, *overrides: str, nproc: int = 1, check: bool = True, timeout: int = 120
) -> subprocess.CompletedProcess:
    """`python -m mdeberta.train` (or torchrun, nproc processes) on tiny.toml in a subprocess."""
    launcher = [sys.executable, "-m", "mdeberta.train"]
    if nproc > 1:
        launcher = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "mdeberta.train",
        ]
    args = ["--data", data, "--output", output, "--config", TINY]
    for item in [*QUICK, *overrides]:
        args += ["--set", item]
    result = subprocess.run(
        launcher + args,
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"training failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def subprocess_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("WORLD_SIZE", None)
    return env


def train_here(data: str, output: str, *overrides: str, vocab: str | None = None):
    """Train in this process (no startup cost) on tiny.toml + QUICK + overrides; return metrics."""
    from mdeberta.train.config import load_train_config
    from mdeberta.train.metrics import read_metrics
    from mdeberta.train.run import train

    cfg = load_train_config(TINY, [*QUICK, *overrides])
    train(data, output, cfg, vocab=vocab)
    return read_metrics(output)


def deterministic(rows: list[dict]) -> list[dict]:
    """Metrics without the wall-clock fields."""
    return [{k: v for k, v in r.items() if k not in ("tokens_per_s", "elapsed_s")} for r in rows]


NO_DROPOUT = ("model.hidden_dropout_prob=0.0", "model.attention_probs_dropout_prob=0.0")


REFERENCE = ("steps=24", "checkpoint_interval=4", "log_interval=2", "export_at_end=true")


def make_trainer(data: str, output: str, *overrides: str, fused: bool | None = None):
    """A fresh Trainer built in this process as train.run builds one, and a logger for it."""
    from mdeberta import io
    from mdeberta.shard_reader import ShardDataset
    from mdeberta.train import distributed
    from mdeberta.train.build import build_model, build_optimizers, model_configs
    from mdeberta.train.config import load_train_config
    from mdeberta.train.loop import Trainer
    from mdeberta.train.metrics import MetricsLogger

    cfg = load_train_config(TINY, [*QUICK, *overrides])
    dataset = ShardDataset(data, seed=cfg.seed, batch_size=cfg.micro_batch_size)
    vocab = dataset.manifest["vocab"]
    model = build_model(cfg, *model_configs(cfg, vocab, dataset.seq_len), vocab)
    optimizers, schedulers = build_optimizers(cfg, model, fused=fused)
    io.makedirs(output)
    trainer = Trainer(
        cfg, model, optimizers, schedulers, dataset, distributed.setup(cfg.device), output
    )
    logger = MetricsLogger(
        output, interval=cfg.log_interval, total_steps=cfg.steps, progress_bar=False
    )
    return trainer, logger
