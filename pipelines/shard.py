"""The shard job: clean corpus + vocabulary -> α-sampled, packed, shuffled token shards.

    python -m mdeberta.pipelines.shard --corpus CLEAN --vocab VOCAB --output SHARDS [--workers N]
        [Beam options]

Steps: list the corpus parts its manifest lists (refusing a stray or missing one); check that the
vocabulary fits every language (vocab.coverage: a warning, or with `strict` a refusal); per part,
read documents (checking the part's sha256 on the way), draw each `copies(passes_lang)` times with
the shared α-sampler (pipelines/sampling.py: the plan and draws build-vocab uses), tokenise the
drawn ones in batches with SentencePiece (loaded once per worker) and pack them, a chunk of
`chunk_chars` characters at a time (pipelines/pack.py), each chunk's rows written to a scratch
file (pipelines/scratch.py); once every chunk's row count is known, place every sequence by a
seeded global permutation into shards of `sequences_per_shard`, each chunk's rows rewritten
sorted by place; each writing task reads its run of every chunk's file and writes its shards, then
the manifest (mdeberta/shards.py, docs/formats.md). Only row counts and slots (8 bytes a row)
go through the shuffle, never the rows: Beam's local runner holds grouped values in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import apache_beam as beam

from mdeberta import io
from mdeberta.clean_corpus import list_parts, read_stats
from mdeberta.config import config_to_dict
from mdeberta.lock import locks_output
from mdeberta.manifest import MANIFEST
from mdeberta.pipelines import options, scratch
from mdeberta.pipelines.options import pipeline
from mdeberta.pipelines.pack import PlaceFn, TokenizePackFn, WriteShardFn
from mdeberta.pipelines.sampling import plan_sampling, sizes_from_stats
from mdeberta.pipelines.shard_config import ShardConfig
from mdeberta.shards import vocab_info, write_shards_manifest
from mdeberta.vocab.coverage import check_vocab_on_corpus

# planning (driver side)


def plan_job(cfg: ShardConfig):
    """(sampling plan, {lang: [clean_corpus.Part]}, vocab block) from the inputs."""
    stats = read_stats(cfg.corpus)
    vocab = vocab_info(cfg.vocab)
    with io.open_file(io.join(cfg.vocab, "spm.model"), "rb", compression=None) as f:
        model = f.read()
    actual = hashlib.sha256(model).hexdigest()
    if actual != vocab["sha256"]:
        raise ValueError(
            f"{cfg.vocab}/spm.model has sha256 {actual}, its manifest records {vocab['sha256']}"
        )
    wanted = [c.strip() for c in cfg.languages.split(",")] if cfg.languages else None
    sizes = sizes_from_stats(stats, "chars_out", wanted)
    plan = plan_sampling(sizes, cfg.alpha, cfg.target_chars, cfg.max_passes)
    parts = list_parts(cfg.corpus, [k for k, lp in plan.languages.items() if lp.passes > 0])
    check_vocab_on_corpus(cfg.vocab, model, parts, cfg.max_byte_fallback, strict=cfg.strict)
    files: dict[str, list] = {}
    for part in parts:
        files.setdefault(part.lang, []).append(part)
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
            if name == MANIFEST or name == scratch.JOB_DIR or name.startswith("shard-"):
                fs.rm(f"{path}/{name}", recursive=True)
    io.makedirs(cfg.output)


# the pipeline


LOCAL_SHARDS_PER_TASK, REMOTE_SHARDS_PER_TASK = 1, 16
"""Shards one writing task assembles: it makes one ranged read per packing chunk that holds rows
of them, so the reads are chunks x shards / this. Locally one (a 64 MB shard in memory; reads from
a disk cost little); on a remote runner 16 (1 GB per task): the reads are object-store
operations, 300 M of them for the XNLI languages with one (docs/dataflow.md, cost)."""


def build_pipeline(p, cfg: ShardConfig, plan, files, vocab, per_task: int = 1) -> None:
    """Add the job's transforms to pipeline `p`; it ends by writing {output}/_job/stats.json."""
    special = vocab["special_ids"]
    parts = [(lang, i, part) for lang in sorted(files) for i, part in enumerate(files[lang])]
    passes = {k: lp.passes for k, lp in plan.languages.items()}
    tokenize = TokenizePackFn(
        io.join(cfg.vocab, "spm.model"),
        cfg.seed,
        passes,
        (cfg.seq_len, special["cls"], special["sep"]),
        cfg.chunk_chars,
        cfg.encode_batch,
        cfg.output,
    )
    packed = (
        p
        | "Parts" >> beam.Create(parts)  # Create reshuffles: parts spread over the workers
        | "TokenizePack" >> beam.ParDo(tokenize).with_outputs("stats", main="counts")
    )
    # Placing needs every chunk's row count, so the rows wait in their scratch files until all
    # are packed; only (shard, chunk, first row, slots) go through the shuffle.
    # Side inputs as AsDict / AsList, not ToDict / ToList combiners: each combiner adds a shuffle
    # and several stages, a fixed cost of every run (together ~0.2 CPU-s of a local run's ~0.5).
    place = PlaceFn(cfg.seq_len, cfg.seed, cfg.sequences_per_shard, cfg.output, per_task)
    entries = (
        packed.counts
        | "Place" >> beam.ParDo(place, beam.pvalue.AsDict(packed.counts))
        | "GroupShards" >> beam.GroupByKey()
        | "Write"
        >> beam.ParDo(WriteShardFn(cfg.output, cfg.seq_len, cfg.sequences_per_shard, per_task))
    )
    _ = (
        p
        | "Once" >> beam.Create([None])
        | "WriteJobStats"
        >> beam.Map(
            _write_job_stats,
            scratch.url(cfg.output, "stats.json"),
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
    plan, files, vocab = plan_job(cfg)
    prepare_output(cfg)
    with pipeline(beam_argv, workers=cfg.workers) as p:
        local = options.runs_locally(beam_argv)
        per_task = LOCAL_SHARDS_PER_TASK if local else REMOTE_SHARDS_PER_TASK
        build_pipeline(p, cfg, plan, files, vocab, per_task)
    job = io.read_json(scratch.url(cfg.output, "stats.json"))
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
    scratch.clear(cfg.output)
    return manifest


if __name__ == "__main__":  # python -m mdeberta.pipelines.shard: `mdeberta shard`'s options
    from mdeberta.pipelines.cli import main_shard

    main_shard()
