"""Peak memory of the clean and shard jobs against their input size: is it flat?

    python benchmarks/memory.py --mb 200,800 [--workers 2] [--dir DIR] [--png docs/memory.png]

For each size, the input is benchmarks/clean.py's text (the packaged sample, shuffled copies) of
that many megabytes; the clean job runs on its .txt.xz files, the shard job on the same documents
written as a clean corpus (one part per language, as benchmarks/shards.py does) with one 8,000-
piece vocabulary trained once. Each job runs in its own process with `--workers` Beam workers
(FnApiRunner, multi_processing); a sampler adds up the resident memory (RSS) of that process and
all its descendants every 0.1 s, so the peak is the job's processes together, not one of them.

Prints JSON: per job and size, the peak MB, wall seconds, and the ratio of each peak to the
smallest size's. `--png` also plots peak against size; `--before FILE` adds the points of an
earlier run's JSON (the code before a change, measured by this script) to the plot.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.clean import make_input  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss(root: int) -> dict[int, int]:
    """Bytes resident in process `root` and in each of its descendants now, by pid."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * PAGE
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        tree[pid] = rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return tree


def run_sampled(cmd: list[str]) -> tuple[float, dict, float, str]:
    """(peak MB of the process tree, {"main": peak MB, "largest_child": peak MB}, wall seconds,
    stdout) of `cmd`: the main process runs Beam's runner, the children its workers."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, each, done = 0, {}, threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            tree = _tree_rss(proc.pid)
            peak = max(peak, sum(tree.values()))
            for pid, rss in tree.items():
                each[pid] = max(each.get(pid, 0), rss)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    children = [rss for pid, rss in each.items() if pid != proc.pid]
    parts = {
        "main": round(each.get(proc.pid, 0) / 1e6),
        "largest_child": round(max(children, default=0) / 1e6),
    }
    return peak / 1e6, parts, time.perf_counter() - start, out


def _docs(directory: Path) -> dict[str, list[str]]:
    import lzma

    docs = {}
    for path in sorted(directory.glob("*.txt.xz")):
        with lzma.open(path, "rt", encoding="utf-8") as f:
            docs[path.name.split(".")[0]] = [d for d in f.read().split("\n\n") if d.strip()]
    return docs


def job(kind: str, work: Path, name: str, workers: int, chunk_chars: int | None) -> None:
    """One job run (the child process): clean or shard on input `name`."""
    if kind == "clean":
        from mdeberta.pipelines.clean import run_clean
        from mdeberta.pipelines.clean_config import CleanConfig

        inputs = [str(work / name / "*.txt.xz")]
        args = ["--direct_running_mode=multi_processing"]
        run_clean(inputs, str(work / f"clean-{name}"), CleanConfig(), args, workers=workers)
    else:
        from mdeberta.pipelines.shard import ShardConfig, run

        cfg = ShardConfig(
            corpus=str(work / f"corpus-{name}"),
            vocab=str(work / "vocab"),
            output=str(work / f"shards-{name}"),
            alpha=1.0,
            overwrite=True,
            workers=workers,
            **({"chunk_chars": chunk_chars} if chunk_chars else {}),
        )
        run(cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", default="200,800", help="input sizes, megabytes of text")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", default=None, help="work directory (default: a /tmp dir)")
    parser.add_argument("--jobs", default="clean,shard")
    parser.add_argument(
        "--languages",
        default="de,en,fr,ru",
        help="sample languages of the input ('' for all 26): few, so that each holds more than "
        "one unit of work (a 50 M-character packing chunk) at both sizes",
    )
    parser.add_argument("--png", default=None, help="plot peak memory against input size")
    parser.add_argument("--before", default=None, help="an earlier run's JSON, for the plot")
    parser.add_argument(
        "--chunk-chars",
        type=int,
        default=None,
        help="the shard job's chunk_chars (default: its own)",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # kind, input name
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-memory-", dir="/tmp"))
    if args.child:
        job(args.child[0], work, args.child[1], args.workers, args.chunk_chars)
        return
    from benchmarks.shards import train_vocab, write_corpus

    sizes = [float(x) for x in args.mb.split(",")]
    text_mb = {}
    for mb in sizes:
        name = f"text-{mb:g}"
        if not (work / name / "done").exists():
            (work / name).mkdir(parents=True, exist_ok=True)
            languages = [x for x in args.languages.split(",") if x]
            (work / name / "mb").write_text(str(make_input(work / name, mb, languages) / 1e6))
            (work / name / "done").touch()
        text_mb[name] = float((work / name / "mb").read_text())
    if "shard" in args.jobs:
        first = _docs(work / f"text-{sizes[0]:g}")
        if not (work / "vocab" / "manifest.json").exists():
            train_vocab(str(work / "vocab"), first, 8000)
        for mb in sizes:
            name = f"text-{mb:g}"
            if not (work / f"corpus-{name}" / "manifest.json").exists():
                write_corpus(str(work / f"corpus-{name}"), _docs(work / name))
    result: dict = {
        "workers": args.workers,
        "cores": os.cpu_count(),
        "shard_chunk_chars": args.chunk_chars,
        "languages": args.languages,
        "load_before": os.getloadavg()[0],
        "jobs": {},
    }
    for kind in args.jobs.split(","):
        runs = []
        for mb in sizes:
            name = f"text-{mb:g}"
            cmd = [sys.executable, __file__, "--dir", str(work), "--workers", str(args.workers)]
            if args.chunk_chars:
                cmd += ["--chunk-chars", str(args.chunk_chars)]
            peak, parts, seconds, _ = run_sampled([*cmd, "--child", kind, name])
            runs.append(
                {"text_mb": round(text_mb[name], 1), "peak_mb": round(peak), **parts, "s": seconds}
            )
        for r in runs:
            r["s"] = round(r["s"], 1)
            r["peak_ratio"] = round(r["peak_mb"] / runs[0]["peak_mb"], 3)
        result["jobs"][kind] = runs
    print(json.dumps(result, indent=2))
    if args.png:
        plot(result, json.loads(Path(args.before).read_text()) if args.before else None, args.png)


def plot(after: dict, before: dict | None, png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, result, style in (("before", before, "--"), ("after", after, "-")):
        for kind, runs in (result or {}).get("jobs", {}).items():
            xs = [r["text_mb"] for r in runs]
            ys = [r["peak_mb"] for r in runs]
            ax.plot(xs, ys, style, marker="o", label=f"{kind}, {label}")
    ax.set_xlabel("input text (MB)")
    ax.set_ylabel("peak resident memory, all processes (MB)")
    ax.set_title(f"Local Beam jobs, {after['workers']} workers (FnApiRunner)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main()
