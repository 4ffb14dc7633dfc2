"""Both Beam jobs run in a memory limit far smaller than their input: no payload is grouped.

Beam's local runner keeps every grouped value in memory, so a job that sent its text (clean) or
its token rows (shard) through a GroupByKey needs memory in proportion to its input. Each job
runs here in a child process (one worker, in process) whose data segment is capped with
RLIMIT_DATA at what a warm-up run left it using plus BUDGET_MB, on INPUT_MB of text (its token
rows: ~160 MB): text or rows in a shuffle need several times the budget, names and counts do
not. Checked when this test was written: the jobs as they were before (text and rows grouped,
main at 40cb270) die here, and still die with MemoryError at 200 MB over the warm-up (they pass
with no limit). The units
of work are set small (4 MB of text per part, 1 MB scratch batches, 1 MB packing chunks, shards of
512 rows) so that what one task holds is far below the budget too.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny_vocab import write_tiny_vocab

REPO = Path(__file__).resolve().parents[2]
INPUT_MB = 48
BUDGET_MB = 40
ALPHABETS = {"en": "abcdefghijklmnoprstuvwy", "de": "abcdefghiklmnoprstuwzäöü"}


def write_input(folder: Path, megabytes: float) -> None:
    """{lang}.txt files of distinct documents of pseudo-words, `megabytes` of text in all."""
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for lang, letters in ALPHABETS.items():
        words = ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(20_000)]
        size, docs = 0, []
        while size < megabytes * 1e6 / len(ALPHABETS):
            paragraphs = [" ".join(rng.choices(words, k=rng.randint(12, 30))) for _ in range(5)]
            docs.append("\n".join(p.capitalize() + "." for p in paragraphs))
            size += len(docs[-1]) + 2
        (folder / f"{lang}.txt").write_text("\n\n".join(docs) + "\n", encoding="utf-8")


def _child(job: str, *args: str) -> dict:
    """Run `job` of this module in a child process; its JSON line back."""
    code = f"from tests.pipelines.test_bounded_memory import {job}; {job}(*{list(args)!r})"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _limit_data(budget_mb: int) -> int:
    """Cap this process's data segment at its current size plus `budget_mb`; returns the cap."""
    import gc
    import resource
    import threading

    # RLIMIT_DATA counts what a thread reserves for its stack (8 MB by default), used or not:
    # the thread pools that hash files would otherwise spend the budget on reservations
    threading.stack_size(2 << 20)
    gc.collect()
    with open("/proc/self/status") as f:
        data_kb = next(int(line.split()[1]) for line in f if line.startswith("VmData:"))
    cap = data_kb * 1024 + budget_mb * (1 << 20)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, resource.getrlimit(resource.RLIMIT_DATA)[1]))
    return cap


def clean_in_budget(small: str, large: str, out: str, budget_mb: str) -> None:
    from mdeberta.pipelines import clean
    from mdeberta.pipelines.clean_config import CleanConfig

    clean.LOCAL_BATCH = (256, 1 << 20)
    cfg = CleanConfig(shard_chars=4_000_000)
    clean.run_clean([f"{small}/*.txt"], f"{out}-warm", cfg, workers=1)  # imports, caches, pools
    _limit_data(int(budget_mb))
    stats = clean.run_clean([f"{large}/*.txt"], out, cfg, workers=1)
    print(json.dumps(stats["totals"]))


def shard_in_budget(small: str, corpus: str, vocab: str, out: str, budget_mb: str) -> None:
    from mdeberta.pipelines.shard import ShardConfig, run

    def cfg(output, corpus=corpus):
        return ShardConfig(
            corpus=corpus,
            vocab=vocab,
            output=output,
            alpha=1.0,
            seq_len=128,
            chunk_chars=1_000_000,
            sequences_per_shard=512,
            workers=1,
        )

    run(cfg(f"{out}-warm", small))  # imports, caches, pools
    _limit_data(int(budget_mb))
    manifest = run(cfg(out))
    print(json.dumps({k: manifest[k] for k in ("num_sequences",)}))


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory):
    root = tmp_path_factory.mktemp("bounded")
    write_input(root / "small", 1)
    write_input(root / "large", INPUT_MB)
    totals = _child("clean_in_budget", *map(str, (root / "small", root / "large")),
                    str(root / "clean"), str(BUDGET_MB))  # fmt: skip
    return root, totals


def test_clean_runs_on_several_times_its_memory_budget(cleaned):
    root, totals = cleaned
    text_mb = sum(p.stat().st_size for p in (root / "large").iterdir()) / 1e6
    assert text_mb >= INPUT_MB > BUDGET_MB
    assert totals["docs_out"] > 0
    assert totals["docs_in"] == totals["docs_out"] + sum(totals["removed"].values())


def test_shard_runs_on_several_times_its_memory_budget(cleaned):
    root, _ = cleaned
    corpus = root / "clean"
    lines = (
        line for part in sorted(corpus.glob("*/part-*"))[:2] for line in _first_lines(part, 20_000)
    )
    write_tiny_vocab(root / "vocab", lines, 400)
    result = _child("shard_in_budget", str(root / "clean-warm"), str(corpus), str(root / "vocab"),
                    str(root / "shards"), str(BUDGET_MB))  # fmt: skip
    rows_mb = result["num_sequences"] * 128 * 4 / 1e6
    assert rows_mb > 2 * BUDGET_MB  # the rows alone would not fit in the budget


def _first_lines(part: Path, n: int):
    from mdeberta import io

    with io.open_file(str(part), "rt") as f:
        for i, line in enumerate(f):
            if i == n:
                return
            yield from json.loads(line)["text"].split("\n")
