"""Throughput of the cleaning job: Beam (FnApiRunner, N workers) against a plain loop.

    python benchmarks/clean.py                 # 203 MB of text, 2 Beam workers (about 2 min)
    python benchmarks/clean.py --mb 50 --workers 2

The input is the packaged sample corpus repeated until it holds --mb megabytes of UTF-8 text.
In each copy the words of every paragraph (the characters, in scripts written without spaces)
are shuffled with a seed of (copy, paragraph) and the paragraph is tagged with a letter code
(digits would not do: the dedup normal form maps them all to 0). So copies are not duplicates,
while a paragraph repeated inside a copy stays repeated, and the text compresses like real text
(2-3x at zstd level 1) rather than like copies of one text (19x): the job compresses the
batches its workers exchange, and copies would flatter it. Both runs process the same .txt.xz
files with the same functions (read, clean_document, dedup, apply_drops, write_part); the loop
does in one process what the Beam graph distributes. Each run happens in its own subprocess so
the peak memory (max RSS of the process and of its children) belongs to it alone.

Prints JSON: MB/s per core for each (wall time; Beam's divided by its workers), their ratio, the
same per CPU-second actually used (a fairer measure when other work shares the cores), Beam's
marginal rate (a second Beam run on a third of the input cancels its fixed start-up cost), peak
memory, sizes and timings.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from mdeberta import resources_path


def tag(n: int) -> str:
    """A letter code for copy n: a, b, ..., z, ba, bb, ..."""
    letters = ""
    while True:
        n, r = divmod(n, 26)
        letters = chr(ord("a") + r) + letters
        if n == 0:
            return letters


def shuffled(paragraph: str, copy: int) -> str:
    """The paragraph's words (or characters, if it has no space) in an order set by the seed."""
    sep = " " if " " in paragraph else ""
    units = paragraph.split(" ") if sep else list(paragraph)
    random.Random(f"{copy}:{paragraph}").shuffle(units)
    return sep.join(units)


def make_input(directory: Path, megabytes: float, languages: Sequence[str] = ()) -> int:
    """Write {lang}.txt.xz files holding `megabytes` of text in all (of the sample corpus's
    `languages`, default all 26); returns the text bytes."""
    samples = sorted(resources_path("sample").glob("*.txt.xz"))
    if languages:
        samples = [p for p in samples if p.name.split(".")[0] in languages]
    texts = {p.name.split(".")[0]: lzma.open(p, "rt", encoding="utf-8").read() for p in samples}
    per_copy = sum(len(t.encode("utf-8")) for t in texts.values())
    copies = max(1, int(megabytes * 1e6 / per_copy) + 1)
    total = 0
    for lang, text in texts.items():
        docs = text.strip("\n").split("\n\n")
        with lzma.open(directory / f"{lang}.txt.xz", "wt", encoding="utf-8", preset=0) as f:
            for copy in range(copies):
                code = tag(copy)
                block = "\n\n".join(
                    "\n".join(f"{shuffled(p, copy)} {code}" for p in doc.split("\n"))
                    for doc in docs
                )
                data = block + "\n\n"
                total += len(data.encode("utf-8"))
                f.write(data)
    return total


def run_beam(inputs: list[str], output: str, workers: int) -> dict:
    from mdeberta.pipelines.clean import run_clean
    from mdeberta.pipelines.clean_config import CleanConfig

    return run_clean(
        inputs, output, CleanConfig(), ["--direct_running_mode=multi_processing"], workers=workers
    )


def run_loop(inputs: list[str], output: str) -> dict:
    """The job's functions in one process, in the order the Beam graph applies them."""
    from mdeberta import io
    from mdeberta.clean_corpus import part_name, write_part
    from mdeberta.pipelines.accounting import Counts, counts_of, stats_document
    from mdeberta.pipelines.clean_config import CleanConfig
    from mdeberta.pipelines.cleaning import clean_document
    from mdeberta.pipelines.dedup import apply_drops, drops_in_memory
    from mdeberta.pipelines.parts import PartLayout, chunked
    from mdeberta.pipelines.read import RawDocument, file_documents, plan_inputs
    from mdeberta.pipelines.rules import rule_context

    cfg = CleanConfig()
    per_lang: dict[str, Counts] = {}
    chunks: dict[tuple, list] = {}  # (lang, file, chunk) -> its documents in input order
    starts_of: dict[tuple, list[int]] = {}
    contexts = {}
    for file in plan_inputs(inputs, cfg.language_set()):
        starts: dict[str, list[int]] = {}
        docs = file_documents(file, per_lang, max_doc_bytes=cfg.max_doc_bytes)
        for *fields, number in chunked(docs, cfg.shard_chars, starts):
            raw = RawDocument._make(fields)
            ctx = contexts.get(raw.lang) or contexts.setdefault(
                raw.lang, rule_context(raw.lang, cfg)
            )
            doc = clean_document(raw, ctx, counts_of(per_lang, raw.lang))
            if doc is not None:
                chunks.setdefault((doc.lang, raw.source, number), []).append(doc)
        starts_of.update(((lang, file.index), first) for lang, first in starts.items())
    layout = PartLayout(starts_of)
    everything = [doc for docs in chunks.values() for doc in docs]
    drops_by_chunk: dict[tuple, list] = {}
    lang_of = {doc.ref: doc.lang for doc in everything}
    for drop in drops_in_memory(everything, boilerplate_min_docs=cfg.boilerplate_min_docs):
        lang = lang_of[drop[0]]
        drops_by_chunk.setdefault(layout.chunk_of(lang, drop[0]), []).append(drop)
    for chunk in layout.chunks():
        lang = chunk[0]
        records = apply_drops(
            chunks.get(chunk, []), drops_by_chunk.get(chunk, []), contexts[lang], per_lang[lang]
        )
        name = part_name(layout.part(chunk), layout.parts[lang])
        write_part(io.join(output, lang, name), records, cfg.zstd_level)
    return stats_document(per_lang)


def measure(mode: str, inputs: list[str], output: str, workers: int) -> dict:
    import mdeberta.pipelines.clean  # noqa: F401  (Beam's import time is not throughput)
    from mdeberta.pipelines.options import freeze_worker_heap

    if mode == "loop":  # what the job's workers do once set up, so both runs collect alike
        freeze_worker_heap()

    usage = [resource.getrusage(r) for r in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu_before = sum(u.ru_utime + u.ru_stime for u in usage)
    start = time.perf_counter()
    stats = run_beam(inputs, output, workers) if mode == "beam" else run_loop(inputs, output)
    seconds = time.perf_counter() - start
    usage = [resource.getrusage(r) for r in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return {
        "seconds": seconds,
        # CPU time of this process and of its children (Beam's SDK workers), minus start-up
        "cpu_seconds": sum(u.ru_utime + u.ru_stime for u in usage) - cpu_before,
        "peak_rss_mb": max(u.ru_maxrss for u in usage) / 1024,
        "docs_out": stats["totals"]["docs_out"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # 200 MB by default: Beam's start-up (~3 CPU-s: worker processes importing Beam) is a fixed
    # cost that a real corpus amortises; at 51 MB it alone is a third of the loop's whole run.
    parser.add_argument("--mb", type=float, default=200.0, help="megabytes of input text")
    parser.add_argument("--workers", type=int, default=2, help="Beam worker processes")
    parser.add_argument("--dir", default=None, help="work directory (default: a /tmp dir)")
    parser.add_argument("--mode", choices=("beam", "loop"), help=argparse.SUPPRESS)
    parser.add_argument("--input", default="input", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-clean-", dir="/tmp"))
    if args.mode:  # a child: one run, its numbers on stdout
        inputs = [str(work / args.input / "*.txt.xz")]
        out = str(work / f"out-{args.mode}-{args.input}")
        result = measure(args.mode, inputs, out, args.workers)
        print(json.dumps(result))
        return
    sizes = {}
    for name, megabytes in (("input", args.mb), ("third", args.mb / 3)):
        (work / name).mkdir(parents=True, exist_ok=True)
        sizes[name] = make_input(work / name, megabytes) / 1e6
    xz_bytes = sum(p.stat().st_size for p in (work / "input").iterdir())
    runs = {}
    for mode, name in (("loop", "input"), ("beam", "input"), ("beam", "third")):
        cmd = [
            sys.executable,
            __file__,
            "--mode",
            mode,
            "--dir",
            str(work),
            "--input",
            name,
            "--workers",
            str(args.workers),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        runs[mode if name == "input" else f"{mode}_{name}"] = json.loads(
            done.stdout.strip().splitlines()[-1]
        )
    mb = sizes["input"]
    # Beam's marginal cost: full input minus a third-size input, which cancels the start-up
    marginal_cpu = (mb - sizes["third"]) / (
        runs["beam"]["cpu_seconds"] - runs["beam_third"]["cpu_seconds"]
    )
    loop = mb / runs["loop"]["seconds"]
    beam = mb / runs["beam"]["seconds"] / args.workers
    loop_cpu = mb / runs["loop"]["cpu_seconds"]
    beam_cpu = mb / runs["beam"]["cpu_seconds"]
    report = {
        "input_text_mb": round(mb, 1),
        "input_xz_mb": round(xz_bytes / 1e6, 1),
        "cores": os.cpu_count(),
        "beam_workers": args.workers,
        "beam_runner": "FnApiRunner multi_processing",
        "beam_seconds": round(runs["beam"]["seconds"], 1),
        "loop_seconds": round(runs["loop"]["seconds"], 1),
        "beam_mb_per_s_per_core": round(beam, 2),
        "loop_mb_per_s_per_core": round(loop, 2),
        "ratio_beam_to_loop": round(beam / loop, 2),
        # the same per CPU-second actually used (fairer on a shared machine; Beam's counts its
        # runner process and its SDK worker processes)
        "beam_cpu_seconds": round(runs["beam"]["cpu_seconds"], 1),
        "loop_cpu_seconds": round(runs["loop"]["cpu_seconds"], 1),
        "beam_mb_per_cpu_s": round(beam_cpu, 2),
        "loop_mb_per_cpu_s": round(loop_cpu, 2),
        "ratio_beam_to_loop_cpu": round(beam_cpu / loop_cpu, 2),
        "beam_marginal_mb_per_cpu_s": round(marginal_cpu, 2),
        "ratio_beam_marginal_to_loop_cpu": round(marginal_cpu / loop_cpu, 2),
        "beam_peak_rss_mb": round(runs["beam"]["peak_rss_mb"]),
        "loop_peak_rss_mb": round(runs["loop"]["peak_rss_mb"]),
        "docs_out": {"beam": runs["beam"]["docs_out"], "loop": runs["loop"]["docs_out"]},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
