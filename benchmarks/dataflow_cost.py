"""What the three Beam jobs would cost on Dataflow at real sizes, from measured per-core speeds.

    python benchmarks/dataflow_cost.py                      # XNLI's 15 languages, all of CC-100
    python benchmarks/dataflow_cost.py --sets 'xnli;xnli,ja' --wall-hours 4
    python benchmarks/dataflow_cost.py --markdown           # the table of docs/dataflow.md

Prints JSON: for each language set and job, the text it reads, vCPU-hours, the GB through each
shuffle (step by step, as named in the job graph; tests/pipelines/test_dataflow.py checks that
these are the graph's GroupByKeys), the side inputs and the largest one, the workers of a given
machine type that keep the job under the wall time, the cost and the share of it that is shuffle.
docs/dataflow.md has the resulting table.

Every input is a constant below that says where it comes from: MEASURED (docs/benchmarks.md, on a
2-core machine; re-measure before quoting), COMPUTED here from the job's own formats, PUBLISHED
(prices, with their date) or ASSUMED (no measurement exists; the docs say so). File sizes come
from the language registry (mdeberta/resources/languages.tsv, compressed CC-100 sizes).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
from array import array
from collections.abc import Sequence

from mdeberta.languages import get_language, resolve_languages
from mdeberta.pipelines.clean import PARTS_PER_BUCKET, REMOTE_BATCH
from mdeberta.pipelines.scratch import READ_THREADS
from mdeberta.pipelines.shard import REMOTE_SHARDS_PER_TASK

MB, GB = 1e6, 1e9

# MEASURED (docs/benchmarks.md)
CLEAN_MB_PER_CORE_S = 4.04
"""Cleaning job, MB of text per second per core: the median of the three 203 MB runs (4.58,
3.90, 4.04; FnApiRunner with 2 worker processes, Beam's start-up included)."""
SAMPLE_MB_PER_CORE_S = 54.0 / 6.315
"""Vocabulary sample: build-vocab's sampling step read 54 MB in 6.3 s of wall time on one core,
Beam's start-up included (a lower bound of its speed)."""
SHARD_TOKENS_PER_CPU_S = 3.18e6 * 0.846
"""Shard job end to end, tokens per CPU-second: raw SentencePiece encode (3.18 M/CPU-s) times the
job's measured ratio to it (0.846), the slower of the two 54.7 MB runs (the other: 3.02 M)."""
TOKENS_PER_TEXT_BYTE = 3_164_101 / 12.8e6
"""Tokens per byte of text with the benchmark's 8,000-piece vocabulary; a 250K vocabulary makes
fewer tokens, so this overstates the shard job's tokens."""
PACKED_RATIO = 3.1
"""zstd level 1 on the documents the cleaning job ships between workers (`read.pack`): 3.1x on
the benchmark text, 2.3-4.6x on real text."""

# ASSUMED
TEXT_PER_XZ_BYTE = 2.5e12 / 590.457e9
"""Text bytes per byte of .txt.xz: the 116 files (590.5 GB compressed) hold XLM-R's "2.5 TB"; by
language it ranges from 3.7 (en) to 9.3 (ka)."""
BYTES_PER_PARAGRAPH = 300
"""CC-100 bytes per line: 288-322 in Hugging Face's cc100 size table (am, sr, ka)."""
PARAGRAPHS_PER_DOCUMENT = 6
DUPLICATE_SHARE = 0.10
"""Paragraph occurrences the exact dedup drops (CC-100 was deduplicated by cc_net, per group of
shards only); each drop is one entry of the drops side input."""
READ_MB_PER_CORE_S = 30.0
"""One read task (xz decompression, splitting, packing) on one core: one file is read by one
task, so the largest file sets a floor to the cleaning job's wall time."""
STARTUP_HOURS = 0.15
"""Worker start-up (container, staged package and its dependencies), per worker and job."""
SAMPLED_PARAGRAPHS = 10_000_000
"""Paragraphs the vocabulary sample draws (build-vocab's default)."""

SCRATCH_DOCS, SCRATCH_CHARS = REMOTE_BATCH  # the cleaning job's batches on Dataflow
SCRATCH_LATENCY_S = 0.05
"""One scratch-file operation on Cloud Storage (a write, a read or a ranged read): seconds a core
waits, the jobs doing them one after another inside a task."""

# PUBLISHED, not confirmed from this machine (no network): Dataflow batch list prices in
# us-central1 as on cloud.google.com/dataflow/pricing in 2025, and Cloud Storage operations
# (Standard class; class A: writes, class B: reads) per 1,000. Check before quoting.
PRICES = {
    "vcpu_hour": 0.056,
    "memory_gb_hour": 0.003557,
    "shuffle_gb": 0.011,
    "class_a_ops_1000": 0.005,
    "class_b_ops_1000": 0.0004,
}

MACHINES = {"n2-standard-4": (4, 16), "n2-highmem-4": (4, 32)}  # vCPUs, GB
JOB_MACHINES = {"clean": "n2-highmem-4", "sample-vocab": "n2-standard-4", "shard": "n2-standard-4"}
"""clean holds one output shard (100 M characters) in memory: high-memory workers."""

# COMPUTED from the jobs' formats
SHARD_CHARS = 100_000_000  # CleanConfig.shard_chars
CHUNK_CHARS = 50_000_000  # ShardConfig.chunk_chars
SEQUENCES_PER_SHARD, SEQ_LEN = 32_768, 512


def _pickled_bytes(items: list) -> float:
    return len(pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)) / len(items)


def drop_bytes() -> float:
    """One drop ((id, file, position), paragraph, reason) as the drops side input encodes it."""
    return _pickled_bytes([((f"{i:032x}", 3, 10_000 + i), 2, "duplicate") for i in range(1000)])


def dedup_key_bytes(paragraphs: int) -> float:
    """A document's dedup keys as `dedup.pack_keys` packs them (ref once, hashes as arrays)."""
    ref = _pickled_bytes([(f"{i:032x}", 3, 10_000 + i) for i in range(1000)])
    columns = array("Q").itemsize + array("I").itemsize  # document hash, ref number
    columns += paragraphs * (array("Q").itemsize + array("I").itemsize + array("i").itemsize)
    return ref + columns


# shuffles: the GroupByKey steps of each job graph -> bytes, from the job's sizes
SHUFFLES: dict[str, list[tuple[str, str]]] = {
    "clean": [
        ("Files", "the file list (Create)"),
        ("Redistribute", "the name of every batch read"),
        ("FirstPositions", "positions, only with --max-docs-per-lang"),
        ("Dedup", "the name of each batch's run of dedup keys per bucket"),
        ("GroupByChunk", "the names of each chunk's kept batches and runs of drops"),
        ("MergeStats", "counters per bundle and part"),
    ],
    "sample-vocab": [
        ("Files", "the file list (Create)"),
        ("ByFile", "the drawn lines"),
        ("CountPerLang", "counters per file"),
        ("AllLangs", "counters per language"),
    ],
    "shard": [
        ("Parts", "the part list (Create)"),
        ("GroupShards", "every packed row's slot, a run per (chunk, shard)"),
    ],
}


def _sizes(texts: Sequence[float]) -> dict[str, float]:
    """Counts the jobs' shuffles and scratch files follow from, for these languages' text."""
    text, languages = sum(texts), len(texts)
    key_runs = drop_runs = buckets = 0.0
    for size in texts:  # a batch writes a run per bucket of its language, a bucket per part
        parts = math.ceil(size / SHARD_CHARS)
        language_buckets = math.ceil(parts / PARTS_PER_BUCKET)
        batches = max(size / BYTES_PER_PARAGRAPH / PARAGRAPHS_PER_DOCUMENT / SCRATCH_DOCS,
                      size / SCRATCH_CHARS)  # fmt: skip
        key_runs += batches * language_buckets
        drop_runs += language_buckets * parts
        buckets += language_buckets
    documents = text / BYTES_PER_PARAGRAPH / PARAGRAPHS_PER_DOCUMENT
    rows = text * TOKENS_PER_TEXT_BYTE / SEQ_LEN
    chunks = math.ceil(text / CHUNK_CHARS) + languages  # a part's last chunk is short
    tasks = rows / SEQUENCES_PER_SHARD / REMOTE_SHARDS_PER_TASK
    # (chunk, writing task) runs: a chunk's rows land in the tasks' shards uniformly at random
    runs = chunks * tasks * -math.expm1(-rows / chunks / tasks)
    return {
        "documents": documents,
        "batches": max(documents / SCRATCH_DOCS, text / SCRATCH_CHARS),
        "rows": rows,
        "chunks": chunks,
        "runs": runs,
        "buckets": buckets,
        "key_runs": key_runs,
        "drop_runs": drop_runs,
    }


def shuffle_bytes(job: str, texts: Sequence[float]) -> dict[str, float]:
    """Bytes into each shuffle of `job` for `texts` (bytes per language); small ones count 0."""
    n = _sizes(texts)
    sizes = {
        "clean": {
            "Redistribute": n["batches"] * 30,
            "Dedup": n["key_runs"] * 60,
            "GroupByChunk": (n["batches"] + n["drop_runs"]) * 60,
        },
        "sample-vocab": {"ByFile": SAMPLED_PARAGRAPHS * (BYTES_PER_PARAGRAPH + 24)},
        # a row's int64 slot, and per run its (chunk, first row)
        "shard": {"GroupShards": n["rows"] * 8 + n["runs"] * 60},
    }[job]
    return {step: sizes.get(step, 0.0) for step, _ in SHUFFLES[job]}


def scratch_operations(job: str, texts: Sequence[float]) -> dict[str, float]:
    """Scratch files written and reads of them (pipelines/scratch.py). Clean: each batch is
    written raw and read back, its kept documents likewise, its dedup keys written once and read
    a run per bucket of its language; each bucket's drops written once and read a run per part.
    Shard: each chunk's rows are written, read, written sorted by place, and read by each shard it
    holds rows of (a ranged read per run). The runs grow with the product of a language's batches
    and buckets (clean) and of chunks and shards (shard): faster than the data."""
    n = _sizes(texts)
    if job == "clean":
        writes = 3 * n["batches"] + n["buckets"]
        return {"writes": writes, "reads": 2 * n["batches"] + n["key_runs"] + n["drop_runs"]}
    if job == "shard":
        return {"writes": 2 * n["chunks"], "reads": n["chunks"] + n["runs"]}
    return {"writes": 0.0, "reads": 0.0}


def side_inputs(job: str, texts: Sequence[float]) -> dict[str, dict]:
    """Each side input: its total bytes and the bytes one lookup reads (multimap: one key)."""
    text, languages = sum(texts), len(texts)
    parts = max(languages, math.ceil(text / SHARD_CHARS))  # one input file per language
    if job == "clean":
        return {
            # the first position of every chunk, per (language, file)
            "Read.chunks": {"bytes": parts * 12 + languages * 40, "read": "whole"},
            "LastAdmitted": {"bytes": languages * 40, "read": "whole"},
            "MergeStats": {"bytes": parts * 200 + languages * 2000, "read": "whole"},
        }
    if job == "shard":
        chunks = math.ceil(text / CHUNK_CHARS) + languages
        out_shards = text * TOKENS_PER_TEXT_BYTE / (SEQUENCES_PER_SHARD * SEQ_LEN)
        return {
            "TokenizePack": {"bytes": chunks * 60, "read": "whole"},
            "Write": {"bytes": out_shards * 250, "read": "whole"},
            "TokenizePack.stats": {"bytes": chunks * 150, "read": "whole"},
        }
    return {"AllLangs": {"bytes": languages * 300, "read": "whole"}}


def cpu_seconds(job: str, texts: Sequence[float]) -> float:
    """Measured work plus the cores' wait on scratch-file operations."""
    text = sum(texts)
    ops = scratch_operations(job, texts)
    # ranged reads of runs go READ_THREADS at a time (scratch.read_runs); whole files one by one
    n = _sizes(texts)
    runs = {"clean": n["key_runs"] + n["drop_runs"], "shard": n["runs"]}.get(job, 0.0)
    waiting = (ops["writes"] + ops["reads"] - runs + runs / READ_THREADS) * SCRATCH_LATENCY_S
    if job == "clean":
        return text / MB / CLEAN_MB_PER_CORE_S + waiting
    if job == "sample-vocab":
        return text / MB / SAMPLE_MB_PER_CORE_S
    return text * TOKENS_PER_TEXT_BYTE / SHARD_TOKENS_PER_CPU_S + waiting


def wall_hours(job: str, workers: int, vcpus: int, cpu_s: float, text: float, largest: float):
    """The job's wall time on `workers`. The cleaning job's read stage (one task per file) ends
    with its largest file, and the Reshuffle after it holds the rest back until then; the other
    steps, and the other jobs, spread over every core."""
    slots = workers * vcpus
    if job != "clean":
        return STARTUP_HOURS + cpu_s / slots / 3600
    read_cpu = text / MB / READ_MB_PER_CORE_S  # part of the measured rate, so of cpu_s
    read = max(largest / MB / READ_MB_PER_CORE_S, read_cpu / slots)
    return STARTUP_HOURS + (read + max(cpu_s - read_cpu, 0.0) / slots) / 3600


def workers_for(job: str, target_h: float, vcpus: int, *sizes: float) -> int | None:
    """The fewest workers that finish under target_h (None if no number can)."""
    low, high = 1, 100_000
    if wall_hours(job, high, vcpus, *sizes) > target_h:
        return None
    while low < high:
        mid = (low + high) // 2
        if wall_hours(job, mid, vcpus, *sizes) <= target_h:
            high = mid
        else:
            low = mid + 1
    return low


def estimate(job: str, codes: list[str], target_h: float) -> dict:
    xz = {code: get_language(code).cc100_bytes for code in codes}
    text = sum(xz.values()) * TEXT_PER_XZ_BYTE
    largest = max(xz.values()) * TEXT_PER_XZ_BYTE
    machine = JOB_MACHINES[job]
    vcpus, memory = MACHINES[machine]
    texts = [xz[code] * TEXT_PER_XZ_BYTE for code in codes]
    cpu_s = cpu_seconds(job, texts)
    sizes = (cpu_s, text, largest)
    workers = workers_for(job, target_h, vcpus, *sizes)
    shuffled = shuffle_bytes(job, texts)
    ops = scratch_operations(job, texts)
    side = side_inputs(job, texts)
    vcpu_hours = cpu_s / 3600 + (workers or 0) * vcpus * STARTUP_HOURS
    compute = vcpu_hours * (PRICES["vcpu_hour"] + memory / vcpus * PRICES["memory_gb_hour"])
    shuffle = sum(shuffled.values()) / GB * PRICES["shuffle_gb"]
    scratch = (
        ops["writes"] / 1000 * PRICES["class_a_ops_1000"]
        + ops["reads"] / 1000 * PRICES["class_b_ops_1000"]
    )
    side_mb = {
        name: {"mb": round(v["bytes"] / MB, 3), "read": v["read"]}
        | ({"mb_per_key": round(v["per_key"] / MB, 3)} if "per_key" in v else {})
        for name, v in side.items()
    }
    largest_side = max(side, key=lambda name: side[name]["bytes"])
    return {
        "text_gb": round(text / GB, 1),
        "vcpu_hours": round(vcpu_hours, 1),
        "shuffle_gb": {step: round(b / GB, 1) for step, b in shuffled.items()},
        "shuffle_gb_total": round(sum(shuffled.values()) / GB, 1),
        "scratch_operations": {k: round(v) for k, v in ops.items()},
        "side_inputs": side_mb,
        "largest_side_input": {"name": largest_side, **side_mb[largest_side]},
        "machine": machine,
        "workers": workers,
        "wall_hours": round(wall_hours(job, workers, vcpus, *sizes), 2) if workers else None,
        "wall_floor_hours": round(wall_hours(job, 100_000, vcpus, *sizes), 2),
        "cost_usd": {
            "compute": round(compute, 2),
            "shuffle": round(shuffle, 2),
            "scratch": round(scratch, 2),
        },
        "shuffle_share": round(shuffle / (compute + shuffle + scratch), 3),
    }


def report(sets: list[str], target_h: float) -> dict:
    out = {
        "inputs": {
            "measured": {
                "clean_mb_per_core_s": CLEAN_MB_PER_CORE_S,
                "sample_mb_per_core_s": round(SAMPLE_MB_PER_CORE_S, 2),
                "shard_tokens_per_cpu_s": round(SHARD_TOKENS_PER_CPU_S),
                "tokens_per_text_byte": round(TOKENS_PER_TEXT_BYTE, 4),
                "packed_ratio": PACKED_RATIO,
            },
            "assumed": {
                "text_per_xz_byte": round(TEXT_PER_XZ_BYTE, 2),
                "bytes_per_paragraph": BYTES_PER_PARAGRAPH,
                "paragraphs_per_document": PARAGRAPHS_PER_DOCUMENT,
                "duplicate_share": DUPLICATE_SHARE,
                "read_mb_per_core_s": READ_MB_PER_CORE_S,
                "startup_hours": STARTUP_HOURS,
                "scratch_latency_s": SCRATCH_LATENCY_S,
            },
            "computed": {
                "drop_bytes": round(drop_bytes(), 1),
                "dedup_key_bytes_per_document": round(dedup_key_bytes(PARAGRAPHS_PER_DOCUMENT)),
            },
            "prices_usd": PRICES,
            "wall_hours_target": target_h,
        },
        "sets": {},
    }
    for name in sets:
        codes = resolve_languages(name)
        out["sets"][name] = {
            "languages": len(codes),
            "jobs": {job: estimate(job, codes, target_h) for job in SHUFFLES},
        }
    return out


def markdown(result: dict) -> str:
    """The table of docs/dataflow.md."""
    rows = [
        "| languages | job | text GB | vCPU-h | shuffled GB (largest step) | largest side input "
        "| scratch ops (reads) | workers for the wall time | wall h (floor) | compute $ "
        "| shuffle $ | scratch $ | shuffle share |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in result["sets"].items():
        for job, e in entry["jobs"].items():
            step = max(e["shuffle_gb"], key=e["shuffle_gb"].get)
            ops = e["scratch_operations"]
            side = e["largest_side_input"]
            read = f"{side['mb_per_key']:,.1f} MB per key" if "mb_per_key" in side else "whole"
            rows.append(
                f"| {name} ({entry['languages']}) | {job} | {e['text_gb']:,.0f} "
                f"| {e['vcpu_hours']:,.0f} | {e['shuffle_gb_total']:,.0f} ({step}) "
                f"| {side['name']}: {side['mb']:,.1f} MB, read {read} "
                f"| {ops['writes'] + ops['reads']:,.0f} ({ops['reads']:,.0f}) "
                f"| {e['workers']} x {e['machine']} | {e['wall_hours']} ({e['wall_floor_hours']}) "
                f"| {e['cost_usd']['compute']:,.2f} | {e['cost_usd']['shuffle']:,.2f} "
                f"| {e['cost_usd']['scratch']:,.2f} "
                f"| {e['shuffle_share']:.0%} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="xnli;all", help="language sets, ';'-separated")
    parser.add_argument("--wall-hours", type=float, default=6.0, help="target wall time per job")
    parser.add_argument("--markdown", action="store_true", help="the docs' table, not JSON")
    args = parser.parse_args(argv)
    result = report(args.sets.split(";"), args.wall_hours)
    print(markdown(result) if args.markdown else json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
