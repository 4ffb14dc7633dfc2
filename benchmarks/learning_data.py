"""The learning study's data (benchmarks/learning.py): training text without the retrieval set's
sentences, a held-out split of it, and the project's own clean -> build-vocab -> shard on both."""

from __future__ import annotations

import json
import lzma
import os
import subprocess
from pathlib import Path

import gettext_parallel as gp

REPO = Path(__file__).resolve().parents[1]
# beside the repository, as in the project's workspace; --text points elsewhere
TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "locale-messages"
# 17 retrieval languages in four scripts, each with >= 1000 held-out pairs on Debian
LANGUAGES = "de,fr,es,it,pt,nl,sv,pl,cs,tr,vi,ru,uk,bg,ja,zh-Hans,ko".split(",")
DOC_LINES = 20  # messages per English document, as locale-messages groups them
HOLD_OUT_EVERY = 64  # every 64th document of each language is validation text, never trained on


def mdeberta(*args: str, log: Path | None = None) -> None:
    """Run one `mdeberta` command as a user would (its own process), failing loudly."""
    cmd = ["mdeberta", *args]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    with open(log or os.devnull, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT, env=env)


def retrieval_sentences(pairs: dict[str, list[tuple[str, str]]]) -> set[str]:
    return {gp.normalise(s) for rows in pairs.values() for row in rows for s in row} - {""}


def filter_text(lines: list[str], banned: set[str]) -> tuple[list[str], int]:
    """Lines whose loose form is a retrieval sentence's, dropped (document breaks kept)."""
    kept, removed = [], 0
    for line in lines:
        if line.strip() and gp.normalise(line) in banned:
            removed += 1
        else:
            kept.append(line)
    return kept, removed


def split_documents(lines: list[str], every: int) -> tuple[list[str], list[str]]:
    """(training, held-out) lines: documents (blank-line separated) numbered from 0, every
    `every`-th one held out whole, so no paragraph of a held-out document is trained on."""
    train, held, doc, n = [], [], [], 0
    for line in [*lines, ""]:
        if line.strip():
            doc.append(line)
        elif doc:
            (held if n % every == every - 1 else train).extend([*doc, ""])
            doc, n = [], n + 1
    return train, held


def write_xz(path: Path, lines: list[str]) -> None:
    with lzma.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def build_data(
    work: Path, text: Path, languages: list[str], train_languages: list[str], pairs: int
) -> dict:
    """raw/ (training text), raw-valid/ (held-out documents of the same text, for validation
    during training), parallel/ (retrieval set), data.json (sizes and the overlap check)."""
    held = gp.parallel_pairs(languages, gp.HELD_OUT_DOMAINS, pairs, seed=0)
    gp.write_laser(str(work / "parallel"), held)
    banned = retrieval_sentences(held)
    exact = {s.strip() for rows in held.values() for row in rows for s in row}
    raw, valid = work / "raw", work / "raw-valid"
    raw.mkdir(parents=True, exist_ok=True)
    valid.mkdir(parents=True, exist_ok=True)
    report = {"retrieval_pairs": {k: len(v) for k, v in held.items()}, "training": {}}
    for lang in train_languages:
        if lang == "en":
            messages = gp.english_messages(gp.HELD_OUT_DOMAINS)
            lines = []
            for i in range(0, len(messages), DOC_LINES):
                lines += [*messages[i : i + DOC_LINES], ""]
        else:
            lines = lzma.open(text / f"{lang}.txt.xz", "rt", encoding="utf-8").read().split("\n")
        kept, removed = filter_text(lines, banned)
        left = sum(1 for line in kept if line.strip() in exact)
        assert left == 0, f"{lang}: {left} retrieval sentences still in the training text"
        kept, held_out = split_documents(kept, HOLD_OUT_EVERY)
        write_xz(raw / f"{lang}.txt.xz", kept)
        write_xz(valid / f"{lang}.txt.xz", held_out)
        report["training"][lang] = {
            "lines_in": sum(1 for x in lines if x.strip()),
            "removed_as_retrieval_sentences": removed,
            "chars": sum(len(x) for x in kept),
            "held_out_chars": sum(len(x) for x in held_out),
        }
    (work / "data.json").write_text(json.dumps(report, indent=2))
    return report


def prepare(work: Path, vocab_size: int, seq_len: int, log: Path) -> None:
    """clean -> build-vocab (a one-pass sample: ~500k paragraphs) -> shard, with the project's
    commands, for the training text and (same vocabulary) the held-out text; a stage whose
    artifact is complete is not redone."""
    clean, vocab = work / "clean", work / f"vocab-{vocab_size}"
    for raw, out in (("raw", clean), ("raw-valid", work / "clean-valid")):
        if not (out / "manifest.json").exists():
            mdeberta("clean", str(work / raw / "*.txt.xz"), "--output", str(out), log=log)
    if not (vocab / "manifest.json").exists():
        args = ["--corpus", str(clean), "--output", str(vocab), "--vocab-size", str(vocab_size)]
        mdeberta("build-vocab", *args, "--sentences", "500000", log=log)
    for corpus, shards in (
        (clean, shard_dir(work, vocab_size, seq_len)),
        (work / "clean-valid", shard_dir(work, vocab_size, seq_len, "valid")),
    ):
        if not (shards / "manifest.json").exists():
            args = ["--corpus", str(corpus), "--vocab", str(vocab), "--output", str(shards)]
            mdeberta("shard", *args, "--seq-len", str(seq_len), "--overwrite", log=log)


def shard_dir(work: Path, vocab_size: int, seq_len: int, part: str = "shards") -> Path:
    return work / f"{part}-{vocab_size}-{seq_len}"
