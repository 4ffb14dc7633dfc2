"""The cleaning job: CC-100 files in, a deduplicated clean corpus out (docs/dataflow.md for GCP).

    python -m mdeberta.pipelines.clean data/*.txt.xz --output clean/ --workers 2
    python -m mdeberta.pipelines.clean gs://bucket/cc100/*.txt.xz --output gs://bucket/clean \\
        --runner DataflowRunner --project P --region R --temp_location gs://bucket/tmp \\
        --setup_file ./pyproject.toml

Graph: read each file streaming (compressed files cannot be split), in batches of documents ->
Reshuffle, so the CPU work spreads over every worker -> normalise and apply the rules (pure
functions, pipelines.rules), keying each document by (language, output shard) and its dedup
hashes by (language, bucket) -> GroupByKey per bucket: exact dedup (pipelines.dedup) -> drops,
keyed by shard -> GroupByKey per shard of the documents alone, the drops joining as a side input
looked up by shard -> sort by document ref, write `{out}/{lang}/part-NNNNN-of-MMMMM.jsonl.zst` ->
empty parts for shards no document reached, stats.json. The driver then writes manifest.json.
A language's shard count comes from the characters read, and documents land in shards by id, so
the files are the same bytes whatever the number of workers.

The documents meet their drops through a side input rather than a Flatten into one GroupByKey
(a CoGroupByKey): the local runner materialises a multi-input Flatten and relays it through an
extra stage, one more round trip of every document's text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from mdeberta import io
from mdeberta.clean_corpus import (
    PART_GLOB,
    STATS,
    part_name,
    write_corpus_manifest,
    write_part,
)
from mdeberta.config import config_to_dict
from mdeberta.lock import locks_output
from mdeberta.manifest import invalidate
from mdeberta.pipelines import dedup, options
from mdeberta.pipelines.accounting import Counts, check_accounting, counts_of, stats_document
from mdeberta.pipelines.clean_config import CleanConfig
from mdeberta.pipelines.cleaning import clean_document
from mdeberta.pipelines.dedup import Document
from mdeberta.pipelines.read import (
    InputFile,
    RawDocument,
    batches,
    file_documents,
    pack,
    plan_inputs,
    unpack,
)
from mdeberta.pipelines.rules import check_langid_available, rule_context

BUCKETS_PER_SHARD = 4
"""Dedup buckets per output shard: a bucket holds the keys of ~shard_chars / 4 characters."""


def _bundle_stats(per_lang: dict[str, Counts], windowed: bool = False) -> Iterable:
    """(lang, counters) on the "stats" output; finish_bundle must wrap them in a window."""
    for item in sorted(per_lang.items()):
        value = GlobalWindows.windowed_value(item) if windowed else item
        yield beam.pvalue.TaggedOutput("stats", value)


class ReadFile(beam.DoFn):
    """InputFile -> batches of raw documents, streaming; counts files, bad files, what is left."""

    def __init__(self, cfg: CleanConfig, languages: set[str] | None):
        self.cfg, self.languages = cfg, languages

    def process(self, file: InputFile):
        per_lang: dict[str, Counts] = {}
        cfg = self.cfg
        docs = file_documents(
            file,
            per_lang,
            max_doc_bytes=cfg.max_doc_bytes,
            languages=self.languages,
            max_docs=cfg.max_docs_per_lang,
            skip_bad=cfg.on_bad_file == "skip",
        )
        # plain tuples, packed to one bytes value per batch: cheap to relay between workers
        yield from map(pack, batches(map(tuple, docs)))
        yield from _bundle_stats(per_lang)


class CleanDocuments(beam.DoFn):
    """Raw document batches -> documents keyed by output shard, and their dedup keys by bucket.

    Both come out as packed lists (read.pack, dedup.pack_keys), one per (language, shard) and per
    (language, bucket) of the batch: Beam's cost is per element and, across workers, per field
    encoded; one element per paragraph would cost more than the rules. Counters are emitted once
    per bundle.
    """

    def __init__(self, cfg: CleanConfig):
        self.cfg = cfg

    def setup(self):
        self.contexts = {}
        options.freeze_worker_heap()

    def start_bundle(self):
        self.per_lang: dict[str, Counts] = {}

    def process(self, batch: bytes, shards: dict[str, int]):
        cfg, docs, entries = self.cfg, {}, {}
        which = {"paragraphs": cfg.dedup_paragraphs, "documents": cfg.dedup_documents}
        for raw in map(RawDocument._make, unpack(batch)):
            if raw.lang not in self.contexts:
                self.contexts[raw.lang] = rule_context(raw.lang, cfg)
            doc = clean_document(raw, self.contexts[raw.lang], counts_of(self.per_lang, raw.lang))
            if doc is None:
                continue
            n = shards[doc.lang]
            # Only what the writer needs, and the text as one string: less to encode and send.
            record = (doc.ref, doc.lang, "\n".join(doc.paragraphs))
            docs.setdefault((doc.lang, dedup.shard_of(doc.id, n)), []).append(record)
            for entry in dedup.dedup_keys(doc, **which):
                bucket = dedup.bucket_of(entry[0], n * BUCKETS_PER_SHARD)
                entries.setdefault((doc.lang, bucket), []).append(entry)
        for key, records in docs.items():
            yield key, pack(records)
        for key, bucket_entries in entries.items():
            yield beam.pvalue.TaggedOutput("dedup", (key, dedup.pack_keys(bucket_entries)))

    def finish_bundle(self):
        # Totals per reason also go to Beam metrics, visible live in the Dataflow console.
        for counts in self.per_lang.values():
            for name, value in counts.metrics():
                beam.metrics.Metrics.counter("clean", name).inc(value)
        yield from _bundle_stats(self.per_lang, windowed=True)


def shard_counts(lang_counts: tuple[str, Counts], shard_chars: int) -> tuple[str, int]:
    """Output files of a language from the characters read: known before cleaning starts, so
    cleaning, keying and the shard GroupByKey fuse into one stage (no extra pass over the docs)."""
    lang, counts = lang_counts
    return lang, math.ceil(counts.chars_read / shard_chars)


class WriteShards(beam.DoFn):
    """((lang, shard), packed document lists) -> one output file, sorted by ref; yields
    (lang, stats). `drops` maps (lang, shard) to the lists of drops of that shard."""

    def __init__(self, cfg: CleanConfig, output: str):
        self.cfg, self.output = cfg, output

    def process(self, group, shards: dict[str, int], drops):
        (lang, shard), packed = group
        docs = [
            Document(ref, lang, tuple(text.split("\n")), ())  # paragraphs hold no newline
            for v in packed
            for ref, lang, text in unpack(v)
        ]
        shard_drops = [d for v in drops[(lang, shard)] for d in v]
        counts = Counts()
        records = dedup.apply_drops(docs, shard_drops, rule_context(lang, self.cfg), counts)
        _write_part(counts, lang, shard, shards[lang], records, self.output, self.cfg)
        yield lang, counts


def _write_part(counts: Counts, lang: str, shard: int, shards: int, records, output, cfg) -> None:
    """Write one part file and record it in the language's counts."""
    name = part_name(shard, shards)
    counts.parts[name] = write_part(io.join(output, lang, name), records, cfg.zstd_level)


class MergeCounts(beam.CombineFn):
    """Sum the Counts of a language (part files are written once, so their entries never clash)."""

    def create_accumulator(self) -> Counts:
        return Counts()

    def add_input(self, acc: Counts, counts: Counts) -> Counts:
        return acc.add(counts)

    def merge_accumulators(self, accs: Iterable[Counts]) -> Counts:
        merged = Counts()
        for acc in accs:
            merged.add(acc)
        return merged

    def extract_output(self, acc: Counts) -> Counts:
        return acc


class Admit(beam.DoFn):
    """Keep the first max_docs_per_lang documents per language by (file, position)."""

    def process(self, batch: bytes, limits: dict[str, tuple[int, int]]):
        over: dict[str, Counts] = {}
        admitted = []
        for record in unpack(batch):
            lang, source, position = record[:3]
            if (source, position) <= limits[lang]:
                admitted.append(record)
            else:
                counts_of(over, lang).docs_over_cap += 1
        if admitted:
            yield pack(admitted)
        yield from _bundle_stats(over)


def _positions(batch: bytes) -> Iterable[tuple[str, tuple[int, int]]]:
    for lang, source, position in (record[:3] for record in unpack(batch)):
        yield lang, (source, position)


def _last_admitted(kv):
    return kv[0], max(kv[1])


def _drops_by_shard(lang_drops: tuple[str, list], shards: dict[str, int]):
    lang, drops = lang_drops
    by_shard: dict[int, list] = {}
    for drop in drops:
        by_shard.setdefault(dedup.shard_of(drop[0][0], shards[lang]), []).append(drop)
    return (((lang, shard), v) for shard, v in by_shard.items())


def write_stats(
    _, per_lang: list[tuple[str, Counts]], cfg: CleanConfig, output: str, languages: Sequence[str]
) -> dict:
    """The part files of shards no document reached (empty), then stats.json from the merged
    counts; returns the stats. See accounting.stats_document for the layout."""
    merged = dict(per_lang)
    for lang, counts in merged.items():
        shards = shard_counts((lang, counts), cfg.shard_chars)[1]
        for shard in range(shards):
            if part_name(shard, shards) not in counts.parts:
                _write_part(counts, lang, shard, shards, [], output, cfg)
    document = stats_document(merged, languages)
    io.write_json(io.join(output, STATS), document)
    return document


def build(p: beam.Pipeline, files: list[InputFile], cfg: CleanConfig, output: str) -> None:
    """Add the cleaning graph to pipeline `p`."""
    languages = cfg.language_set()
    read = (
        p
        | "Files" >> beam.Create(files)
        | "Read" >> beam.ParDo(ReadFile(cfg, languages)).with_outputs("stats", main="docs")
    )
    raw = read.docs | "Redistribute" >> beam.Reshuffle()
    stats = []
    if cfg.max_docs_per_lang:
        limits = (
            raw
            | "Positions" >> beam.FlatMap(_positions)
            | "FirstPositions" >> beam.combiners.Top.SmallestPerKey(cfg.max_docs_per_lang)
            | "LastAdmitted" >> beam.Map(_last_admitted)
        )
        admitted = raw | "Admit" >> beam.ParDo(Admit(), beam.pvalue.AsDict(limits)).with_outputs(
            "stats", main="docs"
        )
        raw = admitted.docs
        stats.append(admitted.stats)
    read_stats = read.stats | "MergeReadStats" >> beam.CombinePerKey(MergeCounts())
    shard_counts_pc = read_stats | "ShardCounts" >> beam.Map(shard_counts, cfg.shard_chars)
    shards = beam.pvalue.AsDict(shard_counts_pc)
    cleaned = raw | "Clean" >> beam.ParDo(CleanDocuments(cfg), shards).with_outputs(
        "stats", "dedup", main="docs"
    )
    drops = (
        cleaned.dedup
        | "Dedup" >> dedup.ExactDedup(boilerplate_min_docs=cfg.boilerplate_min_docs)
        | "DropsByShard" >> beam.FlatMap(_drops_by_shard, shards)
    )
    written = (
        cleaned.docs
        | "GroupByShard" >> beam.GroupByKey()
        | "WriteShards"
        >> beam.ParDo(WriteShards(cfg, output), shards, beam.pvalue.AsMultiMap(drops))
    )
    merged = (
        (read_stats, *stats, cleaned.stats, written)
        | "FlattenStats" >> beam.Flatten()
        | "MergeStats" >> beam.CombinePerKey(MergeCounts())
    )
    # A side input rather than a ToList combiner, which adds a shuffle and stages: fixed cost.
    _ = (
        p
        | "StatsOnce" >> beam.Create([None])
        | "WriteStats"
        >> beam.Map(write_stats, beam.pvalue.AsList(merged), cfg, output, sorted(languages or ()))
    )


def _remove_stale_parts(output: str, document: dict) -> None:
    """Part files of an earlier run into the same directory that this run did not write."""
    fs, root = io.url_to_fs(output)
    for path in fs.glob(f"{root}/*/{PART_GLOB}"):
        lang, name = path.rstrip("/").split("/")[-2:]
        if name not in document["languages"].get(lang, {}).get("shards", {}):
            fs.rm(path)


@locks_output("output")
def run_clean(
    inputs: Sequence[str],
    output: str,
    cfg: CleanConfig,
    beam_args: Sequence[str] = (),
    workers: int | None = None,
) -> dict:
    """Run the job end to end: validate, clean, then stats.json and manifest.json; returns stats.

    Inputs and language codes are checked before any work, so a typo fails in a second.
    """
    if cfg.langid:
        check_langid_available()
    files = plan_inputs(list(inputs), cfg.language_set())
    io.makedirs(output)
    invalidate(output)
    with options.pipeline(beam_args, workers=workers) as p:
        build(p, files, cfg, output)
    document = io.read_json(io.join(output, STATS))
    check_accounting(document)
    _remove_stale_parts(output, document)
    parts = {
        f"{lang}/{name}": info
        for lang, entry in document["languages"].items()
        for name, info in entry["shards"].items()
    }
    write_corpus_manifest(
        output,
        parts,
        options={**config_to_dict(cfg), "inputs": [f.url for f in files]},
        extra={"languages": sorted(document["languages"]), "totals": document["totals"]},
    )
    return document


if __name__ == "__main__":  # python -m mdeberta.pipelines.clean: `mdeberta clean`'s options
    from mdeberta.pipelines.cli import main_clean

    main_clean()
