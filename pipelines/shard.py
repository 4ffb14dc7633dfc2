"""The shard job: clean corpus + vocabulary -> α-sampled, packed, shuffled token shards.

    python -m mdeberta.pipelines.shard --corpus CLEAN --vocab VOCAB --output SHARDS [--workers N]
        [Beam options]

Steps: list the corpus parts; per part, read documents, draw each `copies(passes_lang)` times with
the shared α-sampler (pipelines/sampling.py: the plan and draws build-vocab uses), tokenise the
drawn ones in batches with SentencePiece (loaded once per worker) and pack them, a chunk of
`chunk_chars` characters at a time (pipelines/pack.py); place every sequence by a seeded global
permutation into shards of `sequences_per_shard`; write the shards, then the manifest
(mdeberta/shards.py, docs/formats.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mdeberta import io
from mdeberta.config import check, config_to_dict
from mdeberta.lock import locks_output
from mdeberta.manifest import MANIFEST, read_manifest
from mdeberta.shards import DEFAULT_SEQUENCES_PER_SHARD, vocab_info, write_shards_manifest

JOB_DIR = "_job"  # the job's scratch files inside the output, removed once the manifest exists


@dataclass
class ShardConfig:
    corpus: str = ""
    """Clean corpus directory (mdeberta clean): {lang}/part-*.jsonl.zst, stats.json, manifest."""
    vocab: str = ""
    """Vocabulary directory (mdeberta build-vocab): spm.model and its manifest."""
    output: str = ""
    """Output directory for the token shards (local path or fsspec URL)."""
    seq_len: int = 512
    """Token ids per sequence, [CLS] and [SEP] included."""
    alpha: float = 0.3
    """Language sampling exponent: q_i ∝ p_i^alpha, p_i from the clean stats' chars_out."""
    max_passes: float = 10.0
    """Most times a language's text may be repeated; capped languages are reported."""
    target_chars: int | None = None
    """Characters of text to draw in total; None draws as many as the corpus holds."""
    languages: str | None = None
    """Comma-separated language codes to use; None uses every language of the corpus."""
    seed: int = 0
    """Seed of the sampling draws, the packing order and the write-time shuffle."""
    sequences_per_shard: int = DEFAULT_SEQUENCES_PER_SHARD
    """Sequences per shard file (the last one holds the rest); 32768 x 512 ids = 64 MiB."""
    chunk_chars: int = 50_000_000
    """Characters of drawn text per packing chunk (a run of one part file; bounds worker memory)."""
    encode_batch: int = 256
    """Most documents per SentencePiece encode(list) call."""
    workers: int = 1
    """Local worker processes (FnApiRunner multi_processing when > 1); ignored by other runners."""
    overwrite: bool = False
    """Replace an existing complete output (one with a manifest)."""

    def __post_init__(self):
        for name in ("corpus", "vocab", "output"):
            check(bool(getattr(self, name)), f"{name} is required (a directory or URL)")
        check(self.seq_len >= 3, f"seq_len must be >= 3 ([CLS] id [SEP]), got {self.seq_len}")
        check(0 < self.alpha <= 1, f"alpha must be in (0, 1], got {self.alpha}")
        check(self.max_passes > 0, f"max_passes must be > 0, got {self.max_passes}")
        check(
            self.target_chars is None or self.target_chars > 0,
            f"target_chars must be > 0 or None, got {self.target_chars}",
        )
        check(self.sequences_per_shard >= 1, "sequences_per_shard must be >= 1")
        check(self.chunk_chars >= 1, f"chunk_chars must be >= 1, got {self.chunk_chars}")
        check(self.encode_batch >= 1, f"encode_batch must be >= 1, got {self.encode_batch}")
        check(self.workers >= 1, f"workers must be >= 1, got {self.workers}")


# planning (driver side)


def plan_job(cfg: ShardConfig):
    """(sampling plan, {lang: part files}, vocab block) from the inputs."""
    from mdeberta.pipelines.sampling import plan_sampling, read_clean_stats, sizes_from_stats

    read_manifest(cfg.corpus, kind="clean-corpus")
    vocab = vocab_info(cfg.vocab)
    actual = io.sha256_file(io.join(cfg.vocab, "spm.model"))
    if actual != vocab["sha256"]:
        raise ValueError(
            f"{cfg.vocab}/spm.model has sha256 {actual}, its manifest records {vocab['sha256']}"
        )
    wanted = [c.strip() for c in cfg.languages.split(",")] if cfg.languages else None
    sizes = sizes_from_stats(read_clean_stats(cfg.corpus), "chars_out", wanted)
    plan = plan_sampling(sizes, cfg.alpha, cfg.target_chars, cfg.max_passes)
    langs = [k for k, lp in plan.languages.items() if lp.passes > 0]
    files = {k: io.expand_inputs([io.join(cfg.corpus, k, "part-*.jsonl.zst")]) for k in langs}
    return plan, files, vocab


def prepare_output(cfg: ShardConfig) -> None:
    """Refuse a complete output unless overwrite; clear stale shards of an interrupted run."""
    if io.exists(io.join(cfg.output, MANIFEST)):
        if not cfg.overwrite:
            raise FileExistsError(
                f"{cfg.output} already holds token shards (manifest.json); pass --overwrite"
            )
    fs, path = io.url_to_fs(cfg.output)
    if fs.exists(path):
        for name in io.listdir(cfg.output):
            if name == MANIFEST or name == JOB_DIR or name.startswith("shard-"):
                fs.rm(f"{path}/{name}", recursive=True)
    io.makedirs(cfg.output)


# the pipeline


def build_pipeline(p, cfg: ShardConfig, plan, files, vocab) -> None:
    """Add the job's transforms to pipeline `p`; it ends by writing {output}/_job/stats.json."""
    import apache_beam as beam

    from mdeberta.pipelines.pack import PlaceFn, TokenizePackFn, WriteShardFn

    special = vocab["special_ids"]
    parts = [(lang, i, url) for lang in sorted(files) for i, url in enumerate(files[lang])]
    passes = {k: lp.passes for k, lp in plan.languages.items()}
    tokenize = TokenizePackFn(
        io.join(cfg.vocab, "spm.model"),
        cfg.seed,
        passes,
        (cfg.seq_len, special["cls"], special["sep"]),
        cfg.chunk_chars,
        cfg.encode_batch,
    )
    packed = (
        p
        | "Parts" >> beam.Create(parts)  # Create reshuffles: parts spread over the workers
        | "TokenizePack" >> beam.ParDo(tokenize).with_outputs("counts", "stats", main="rows")
    )
    # Placing needs every chunk's row count, so the rows wait (as bytes) until all are packed.
    # Side inputs as AsDict / AsList, not ToDict / ToList combiners: each combiner adds a shuffle
    # and several stages, a fixed cost of every run (together ~0.2 CPU-s of a local run's ~0.5).
    place = PlaceFn(cfg.seq_len, cfg.seed, cfg.sequences_per_shard)
    entries = (
        packed.rows
        | "Place" >> beam.ParDo(place, beam.pvalue.AsDict(packed.counts))
        | "GroupShards" >> beam.GroupByKey()
        | "Write" >> beam.ParDo(WriteShardFn(cfg.output, cfg.seq_len))
    )
    _ = (
        p
        | "Once" >> beam.Create([None])
        | "WriteJobStats"
        >> beam.Map(
            _write_job_stats,
            io.join(cfg.output, JOB_DIR, "stats.json"),
            beam.pvalue.AsList(entries),
            beam.pvalue.AsList(packed.stats),
        )
    )


def _write_job_stats(_, url: str, entries: list, stats: list) -> None:
    """stats.json: the shards' entries by name and per-language sums of the chunks' stats."""
    shards = sorted(entries, key=lambda e: e["name"])
    languages: dict[str, dict[str, int]] = {}
    for lang, chunk_stats in sorted(stats, key=lambda s: s[0]):
        total = languages.setdefault(lang, {})
        for k, v in chunk_stats.items():
            total[k] = total.get(k, 0) + v
    io.write_json(url, {"shards": shards, "languages": languages})


# running


def language_report(plan, languages: dict[str, dict]) -> dict[str, dict]:
    """Per language: what the plan asked (p, q, passes, capped) and what the shards hold."""
    report = {}
    for lang, lp in plan.languages.items():
        got = languages.get(lang, {})
        report[lang] = {
            "p": lp.p,
            "q": lp.q,
            "passes": lp.passes,
            "capped": lp.capped,
            **{k: got.get(k, 0) for k in ("documents", "tokens", "sequences", "dropped_tokens")},
        }
    return report


@locks_output("cfg.output")
def run(cfg: ShardConfig, beam_argv: Sequence[str] = ()) -> dict:
    """Run the shard job; return the manifest it wrote."""
    from mdeberta.pipelines.options import pipeline

    plan, files, vocab = plan_job(cfg)
    prepare_output(cfg)
    with pipeline(beam_argv, workers=cfg.workers) as p:
        build_pipeline(p, cfg, plan, files, vocab)
    job = io.read_json(io.join(cfg.output, JOB_DIR, "stats.json"))
    if not job["shards"]:
        raise ValueError(
            f"{cfg.corpus}: the sampled text gives no full sequence of {cfg.seq_len} tokens"
        )
    manifest = write_shards_manifest(
        cfg.output,
        job["shards"],
        seq_len=cfg.seq_len,
        vocab=vocab,
        options=config_to_dict(cfg),
        inputs={"corpus": cfg.corpus, "vocab": cfg.vocab},
        extra={
            "seed": cfg.seed,
            "languages": language_report(plan, job["languages"]),
            "sampling": plan.to_dict(),
            "packing": {
                "chunk_chars": cfg.chunk_chars,
                "chunks": {k: v["chunks"] for k, v in sorted(job["languages"].items())},
                "languages_mixed": False,
                "doc_separator": "sep",
            },
        },
    )
    fs, path = io.url_to_fs(io.join(cfg.output, JOB_DIR))
    fs.rm(path, recursive=True)
    return manifest


if __name__ == "__main__":  # python -m mdeberta.pipelines.shard: `mdeberta shard`'s options
    import sys

    from mdeberta.cli import main

    main(["shard", *sys.argv[1:]])
