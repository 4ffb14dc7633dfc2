"""Benchmark `build-vocab` against SentencePieceTrainer called directly on the same sampled text.

    python benchmarks/vocab.py --raw 'texts/*.txt.xz' --vocab-size 16000 --sentences 100000
    python benchmarks/vocab.py --corpus clean/ --vocab-size 250000 --sentences 10000000

Prints one JSON object: wall seconds and peak RSS of (a) the whole build-vocab (Beam sample,
checks, training, tokenizer files, report), with its per-step seconds from the manifest, and
(b) SentencePieceTrainer alone with the same trainer spec and seed on build-vocab's sampled text
(with --repeats N, N alternating runs of each and the fastest of each); the ratios; whether both
produced the same pieces and scores; and the encoding speed of the result (sentencepiece and the
Hugging Face fast tokenizer, one thread each, on the sampled lines) and how many of those lines
the tokenizer.json gives sentencepiece's ids (the others classed as exact ties, normalizer
differences or other).

--raw takes CC-100-style text files ({lang}.txt[.xz], paragraphs one a line, documents separated
by blank lines) and only reformats them into a clean-corpus directory (no cleaning), so the
benchmark needs no other stage. Each measured step runs in its own process (peak RSS via wait4).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOC_LINES = 50  # --raw: documents of at most this many paragraphs when no blank lines separate them


def _documents(path: Path, lang: str):
    from mdeberta import io

    block: list[str] = []
    with io.open_file(str(path), "rt") as f:
        for line in f:
            line = line.strip()
            if line:
                block.append(line)
            if block and (not line or len(block) >= DOC_LINES):
                text = "\n".join(block)
                yield {"id": hashlib.sha1(text.encode()).hexdigest(), "lang": lang, "text": text}
                block = []
    if block:
        text = "\n".join(block)
        yield {"id": hashlib.sha1(text.encode()).hexdigest(), "lang": lang, "text": text}


def make_corpus(raw: str, out: Path) -> str:
    """Reformat CC-100-style files into a clean-corpus directory (format only, no cleaning)."""
    from mdeberta import io
    from mdeberta.clean_corpus import part_name, write_corpus_manifest, write_part

    stats, parts = {}, {}
    for url in io.expand_inputs([raw]):
        path = Path(url)
        lang = path.name.split(".")[0]
        docs = list(_documents(path, lang))
        paragraphs = sum(d["text"].count("\n") + 1 for d in docs)
        chars = sum(len(d["text"]) for d in docs)
        name = f"{lang}/{part_name(0, 1)}"
        records = [(d["id"], d["lang"], d["text"]) for d in docs]
        parts[name] = write_part(str(out / name), records, level=3)
        stats[lang] = {"docs_in": len(docs), "docs_out": len(docs), "paragraphs_in": paragraphs}
        stats[lang] |= {"paragraphs_out": paragraphs, "chars_in": chars, "chars_out": chars}
        stats[lang]["removed"] = {}
    io.write_json(str(out / "stats.json"), {"languages": stats, "totals": {}})
    write_corpus_manifest(str(out), parts, {"benchmark_format_only": raw})
    return str(out)


# the measured steps, each run in a child process


def _child_build(cfg_json: str) -> None:
    from mdeberta.config import from_dict
    from mdeberta.vocab.build import build_vocab
    from mdeberta.vocab.config import VocabConfig

    build_vocab(from_dict(VocabConfig, json.loads(cfg_json)))


def _child_spm(cfg_json: str) -> None:
    import sentencepiece as spm

    from mdeberta.config import from_dict
    from mdeberta.vocab.config import VocabConfig
    from mdeberta.vocab.train import trainer_spec

    cfg = from_dict(VocabConfig, json.loads(cfg_json))
    manifest = json.loads(Path(cfg.output, "manifest.json").read_text())
    spec = trainer_spec(cfg)
    spec["input_sentence_size"] = manifest["memory"]["input_sentence_size"]
    spec["train_extremely_large_corpus"] = manifest["memory"]["extremely_large"]
    files = sorted(str(p) for p in Path(cfg.output, "sample").glob("part-*.txt"))
    spm.set_random_generator_seed(cfg.seed)
    prefix = str(Path(cfg.output).parent / "direct")
    spm.SentencePieceTrainer.train(input=",".join(files), model_prefix=prefix, **spec)


def measure(step: str, cfg: dict) -> dict:
    """Wall seconds and peak RSS (MiB) of one step in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", step, json.dumps(cfg)])
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"step {step} failed")
    cpu = usage.ru_utime + usage.ru_stime  # the child and the processes it waited for
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def same_pieces(ours: Path, direct: Path) -> bool:
    from mdeberta.vocab.tokenizer import load_model_proto

    a, b = (load_model_proto(p.read_bytes()).pieces for p in (ours, direct))
    return [(p.piece, p.score) for p in a] == [(p.piece, p.score) for p in b]


def encoding_speed(vocab_dir: Path, lines: list[str]) -> dict:
    import sentencepiece as spm
    from transformers import AutoTokenizer

    chars = sum(map(len, lines))
    sp = spm.SentencePieceProcessor(model_file=str(vocab_dir / "spm.model"))
    start = time.perf_counter()
    sp.encode(lines, num_threads=1)
    spm_s = time.perf_counter() - start
    os.environ["RAYON_NUM_THREADS"] = "1"  # read when the tokenizers thread pool starts
    tok = AutoTokenizer.from_pretrained(str(vocab_dir))
    start = time.perf_counter()
    tok(lines, add_special_tokens=False)
    hf_s = time.perf_counter() - start
    return {
        "lines": len(lines),
        "chars": chars,
        "sentencepiece_chars_per_s": round(chars / spm_s),
        "hf_fast_chars_per_s": round(chars / hf_s),
    }


def parity(vocab_dir: Path, lines: list[str]) -> dict:
    """Lines where tokenizer.json gives sentencepiece's ids, and why the others differ."""
    import sentencepiece as spm
    from tokenizers import Tokenizer

    sp = spm.SentencePieceProcessor(model_file=str(vocab_dir / "spm.model"))
    norm = spm.SentencePieceNormalizer(model_file=str(vocab_dir / "spm.model"))
    tok = Tokenizer.from_file(str(vocab_dir / "tokenizer.json"))
    counts = {"lines": len(lines), "identical": 0, "ties": 0, "normalizer": 0, "other": 0}
    for line, enc in zip(lines, tok.encode_batch(lines, add_special_tokens=False), strict=True):
        ours, theirs = enc.ids, sp.encode(line)
        score = lambda ids: sum(map(sp.get_score, ids))  # noqa: E731
        if ours == theirs:
            counts["identical"] += 1
        elif sorted(ours) == sorted(theirs) and abs(score(ours) - score(theirs)) < 1e-3:
            counts["ties"] += 1  # same pieces, another order, same score
        elif norm.normalize(line) != tok.normalizer.normalize_str(line).strip():
            counts["normalizer"] += 1
        else:
            counts["other"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--raw", help="CC-100-style text files (glob) to reformat as the corpus")
    parser.add_argument("--corpus", help="A clean corpus directory")
    parser.add_argument("--vocab-size", type=int, default=16000)
    parser.add_argument("--sentences", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=0, help="0 = every core")
    parser.add_argument("--encode-lines", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs; best of each")
    parser.add_argument("--work", help="Working directory (default: a temporary one)")
    args = parser.parse_args()
    if not (args.raw or args.corpus):
        parser.error("give --raw or --corpus")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-vocab-"))
    corpus = args.corpus or make_corpus(args.raw, work / "clean")
    cfg = {
        "corpus": corpus,
        "output": str(work / "vocab"),
        "vocab_size": args.vocab_size,
        "sentences": args.sentences,
        "num_threads": args.threads,
        "keep_sample": True,
    }
    builds, directs = [], []
    for _ in range(args.repeats):  # alternate, so both see the same machine load on average
        builds.append(measure("build", cfg))
        seconds = json.loads((work / "vocab" / "manifest.json").read_text())["seconds"]
        builds[-1] |= {"steps_wall_s": seconds["wall"], "steps_cpu_s": seconds["cpu"]}
        directs.append(measure("spm", cfg))
    build = min(builds, key=lambda r: r["wall_s"])
    direct = min(directs, key=lambda r: r["wall_s"])
    manifest = json.loads((work / "vocab" / "manifest.json").read_text())
    sample = sorted((work / "vocab" / "sample").glob("part-*.txt"))
    lines = [x for p in sample for x in p.read_text().splitlines()][: args.encode_lines]
    result = {
        "cpu_count": os.cpu_count(),
        "vocab_size": args.vocab_size,
        "sample": manifest["sample"]["totals"],
        "languages": len(manifest["sampling"]["languages"]),
        "build_vocab": build,
        "sentencepiece_direct": direct,
        "runs": {"build_vocab": builds, "sentencepiece_direct": directs},
        "wall_ratio": round(build["wall_s"] / direct["wall_s"], 3),
        "train_step_wall_ratio": round(build["steps_wall_s"]["train"] / direct["wall_s"], 3),
        "cpu_ratio": round(build["cpu_s"] / direct["cpu_s"], 3),
        "train_step_cpu_ratio": round(build["steps_cpu_s"]["train"] / direct["cpu_s"], 3),
        "peak_rss_ratio": round(build["peak_rss_mib"] / direct["peak_rss_mib"], 3),
        "same_pieces_and_scores": same_pieces(work / "vocab" / "spm.model", work / "direct.model"),
        "encoding": encoding_speed(work / "vocab", lines),
        "hf_parity": parity(work / "vocab", lines),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        {"build": _child_build, "spm": _child_spm}[sys.argv[2]](sys.argv[3])
    else:
        main()
