"""The cleaning job: CC-100 files in, a deduplicated clean corpus out (docs/dataflow.md for GCP).

    python -m mdeberta.pipelines.clean data/*.txt.xz --output clean/ --workers 2
    python -m mdeberta.pipelines.clean gs://bucket/cc100/*.txt.xz --output gs://bucket/clean \\
        --runner DataflowRunner --project P --region R --temp_location gs://bucket/tmp \\
        --setup_file ./pyproject.toml

Graph: read each file streaming (compressed files cannot be split) in batches of documents, each
batch written to a scratch file (pipelines/scratch.py), and each language's documents of the file
cut into chunks of about `shard_chars` characters read (pipelines/parts.py) -> Reshuffle the
batches' names, so the CPU work spreads over every worker -> normalise and apply the rules (pure
functions, pipelines.rules), writing each batch's survivors to a scratch file per (language,
chunk) and their dedup hashes to one scratch file per batch, a run per (language, bucket) ->
GroupByKey of the runs' names per bucket: exact dedup (pipelines.dedup), the drops written to one
scratch file per bucket, a run per chunk -> GroupByKey of both kinds of names per chunk: read the
chunk's batches in order, apply its drops, write the chunk as
`{out}/{lang}/part-NNNNN-of-MMMMM.jsonl.zst` -> empty parts for chunks that kept nothing,
stats.json. The driver then writes manifest.json and removes the scratch files.

Only names, positions and counters go through the grouping steps and side inputs, never text or
hashes: Beam's local runner holds grouped values in memory (two copies at once), so a job that
grouped its text needed ~2.7 MB of memory per MB of input, and even its dedup hashes alone (15-25%
of the text's size on short paragraphs) grew it by half. This one holds one batch, one bucket of
hashes or one part's drops per task. A language's parts are its files' chunks in file order, a
chunk's documents are in input order, so the files are the same bytes whatever the number of
workers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from mdeberta import io
from mdeberta.clean_corpus import (
    PART_GLOB,
    STATS,
    write_corpus_manifest,
    write_part,
)
from mdeberta.config import config_to_dict
from mdeberta.lock import locks_output
from mdeberta.manifest import invalidate
from mdeberta.pipelines import dedup, options, scratch
from mdeberta.pipelines.accounting import Counts, check_accounting, counts_of, stats_document
from mdeberta.pipelines.clean_config import CleanConfig
from mdeberta.pipelines.cleaning import clean_document
from mdeberta.pipelines.dedup import Document
from mdeberta.pipelines.parts import (
    Chunk,
    LayoutOnce,
    PartLayout,
    chunked,
    drops_url,
    kept_url,
    keys_url,
    raw_url,
)
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

PARTS_PER_BUCKET = 8
"""Output parts per dedup bucket: a bucket holds the keys of up to 8 * shard_chars characters
(~20-200 MB: 8-byte hashes of paragraphs of 40-300 characters), in memory while it is deduped."""
KEPT, DROPS = 0, 1  # what a pointer of the GroupByChunk join names
LOCAL_BATCH, REMOTE_BATCH = (1024, 2 << 20), (16384, 32 << 20)
"""A batch (a scratch file, and one task of the cleaning step) closes at this many documents or
characters. Locally (FnApiRunner), small: a stage hands each worker an equal count of batches, so
small ones keep 2-8 workers busy to the end (8 MB batches: 0.62x the plain loop per core at 203
MB, 2 MB: 0.78x). On a remote runner (Dataflow), large: every batch costs object-store
operations, a write and read of each file and a ranged read per dedup bucket of its language, and
their number grows with batches x buckets (docs/dataflow.md, cost)."""


def batch_limits(beam_argv: Sequence[str]) -> tuple[int, int]:
    """(documents, characters) of a batch for the runner these Beam options name."""
    return LOCAL_BATCH if options.runs_locally(beam_argv) else REMOTE_BATCH


def _bundle_stats(per_lang: dict[str, Counts], windowed: bool = False) -> Iterable:
    """(lang, counters) on the "stats" output; finish_bundle must wrap them in a window."""
    for item in sorted(per_lang.items()):
        value = GlobalWindows.windowed_value(item) if windowed else item
        yield beam.pvalue.TaggedOutput("stats", value)


class ReadFile(beam.DoFn):
    """InputFile -> (file index, batch number) of each batch of raw documents, written as a
    scratch file, streaming; on "chunks" ((lang, file index), first position of each chunk);
    on "positions" (with max_docs_per_lang) every document's (lang, (file, position))."""

    def __init__(self, cfg: CleanConfig, languages, output: str, batch: tuple[int, int]):
        self.cfg, self.languages, self.output, self.batch = cfg, languages, output, batch

    def process(self, file: InputFile):
        per_lang: dict[str, Counts] = {}
        starts: dict[str, list[int]] = {}
        cfg = self.cfg
        docs = file_documents(
            file,
            per_lang,
            max_doc_bytes=cfg.max_doc_bytes,
            languages=self.languages,
            max_docs=cfg.max_docs_per_lang,
            skip_bad=cfg.on_bad_file == "skip",
        )
        records = chunked(docs, cfg.shard_chars, starts)
        for number, batch in enumerate(batches(records, *self.batch)):
            scratch.write(raw_url(self.output, file.index, number), pack(batch))
            yield file.index, number
            if cfg.max_docs_per_lang:
                for record in batch:
                    yield beam.pvalue.TaggedOutput("positions", (record[0], record[1:3]))
        for lang, first in sorted(starts.items()):
            yield beam.pvalue.TaggedOutput("chunks", ((lang, file.index), first))
        yield from _bundle_stats(per_lang)


class CleanDocuments(LayoutOnce, beam.DoFn):
    """(file index, batch number) -> the batch's survivors of the rules, written to a scratch file
    per chunk: (chunk, (KEPT, batch number)) for each; their dedup keys, packed per (language,
    bucket) (dedup.pack_keys), in one scratch file per batch: on "dedup", ((lang, bucket),
    (file index, batch number, start, length)) for each run. Counters go out once per bundle.
    """

    def __init__(self, cfg: CleanConfig, output: str):
        self.cfg, self.output = cfg, output

    def setup(self):
        self.contexts = {}
        options.freeze_worker_heap()

    def start_bundle(self):
        self.per_lang: dict[str, Counts] = {}

    def process(self, batch: tuple[int, int], chunks: dict, limits: dict | None = None):
        cfg, layout, kept, entries = self.cfg, self.layout(chunks), {}, {}
        which = {"paragraphs": cfg.dedup_paragraphs, "documents": cfg.dedup_documents}
        for *fields, number in unpack(scratch.read(raw_url(self.output, *batch))):
            raw = RawDocument._make(fields)
            counts = counts_of(self.per_lang, raw.lang)
            if limits is not None and (raw.source, raw.position) > limits[raw.lang]:
                counts.docs_over_cap += 1  # the first max_docs_per_lang by (file, position) stay
                continue
            if raw.lang not in self.contexts:
                self.contexts[raw.lang] = rule_context(raw.lang, cfg)
            doc = clean_document(raw, self.contexts[raw.lang], counts)
            if doc is None:
                continue
            # the ref and the text as one string: less to pickle and compress
            kept.setdefault((doc.lang, raw.source, number), []).append(
                (doc.ref, "\n".join(doc.paragraphs))
            )
            buckets = -(-layout.parts[doc.lang] // PARTS_PER_BUCKET)
            for entry in dedup.dedup_keys(doc, **which):
                key = (doc.lang, dedup.bucket_of(entry[0], buckets))
                entries.setdefault(key, []).append(entry)
        for chunk, records in kept.items():
            scratch.write(kept_url(self.output, chunk, batch[1]), pack(records))
            yield chunk, (KEPT, batch[1])
        runs = {key: dedup.pack_keys(bucket_entries) for key, bucket_entries in entries.items()}
        for key, start, length in scratch.write_runs(keys_url(self.output, *batch), runs):
            yield beam.pvalue.TaggedOutput("dedup", (key, (*batch, start, length)))

    def finish_bundle(self):
        # Totals per reason also go to Beam metrics, visible live in the Dataflow console.
        for counts in self.per_lang.values():
            for name, value in counts.metrics():
                beam.metrics.Metrics.counter("clean", name).inc(value)
        yield from _bundle_stats(self.per_lang, windowed=True)


class FindDrops(LayoutOnce, beam.DoFn):
    """((lang, bucket), runs of packed keys) -> the bucket's drops (pipelines.dedup), written as
    one scratch file with a run per chunk: (chunk, (DROPS, bucket, start, length)) for each."""

    def __init__(self, output: str, boilerplate_min_docs: int):
        self.output, self.boilerplate_min_docs = output, boilerplate_min_docs

    def process(self, group, chunks: dict):
        (lang, bucket), runs = group
        packed = scratch.read_runs(
            (keys_url(self.output, source, batch), start, length)
            for source, batch, start, length in sorted(runs)  # the same drops on any worker
        )
        layout, by_chunk = self.layout(chunks), {}
        for drop in dedup.bucket_drops(lang, packed, self.boilerplate_min_docs):
            by_chunk.setdefault(layout.chunk_of(lang, drop[0]), []).append(drop)
        runs = {chunk: pack(drops) for chunk, drops in by_chunk.items()}
        for chunk, start, length in scratch.write_runs(drops_url(self.output, lang, bucket), runs):
            yield chunk, (DROPS, bucket, start, length)


class WriteParts(LayoutOnce, beam.DoFn):
    """(chunk, [(KEPT, batch) and (DROPS, bucket, start, length)]) -> the chunk's output part:
    its batches' survivors in batch order, less its drops; yields (lang, counts)."""

    def __init__(self, cfg: CleanConfig, output: str):
        self.cfg, self.output = cfg, output

    def process(self, group, chunks: dict):
        chunk, pointers = group
        lang, layout = chunk[0], self.layout(chunks)
        numbers = sorted(p[1] for p in pointers if p[0] == KEPT)
        runs = scratch.read_runs(
            (drops_url(self.output, lang, bucket), start, length)
            for _, bucket, start, length in sorted(p for p in pointers if p[0] == DROPS)
        )
        chunk_drops = [drop for data in runs for drop in unpack(data)]
        docs = (
            Document(ref, lang, tuple(text.split("\n")), ())  # paragraphs hold no newline
            for number in numbers
            for ref, text in unpack(scratch.read(kept_url(self.output, chunk, number)))
        )
        counts = Counts()
        records = dedup.apply_drops(docs, chunk_drops, rule_context(lang, self.cfg), counts)
        _write_part(counts, chunk, layout, records, self.output, self.cfg)
        yield lang, counts


def _write_part(counts: Counts, chunk: Chunk, layout: PartLayout, records, output, cfg) -> None:
    """Write one part file and record it in the language's counts."""
    name = layout.name(chunk)
    counts.parts[name] = write_part(io.join(output, chunk[0], name), records, cfg.zstd_level)


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


def _last_admitted(kv):
    return kv[0], max(kv[1])


def write_stats(
    _,
    per_lang: list[tuple[str, Counts]],
    chunks: dict,
    cfg: CleanConfig,
    output: str,
    languages: Sequence[str],
) -> dict:
    """The part files of chunks that kept no document (empty), then stats.json from the merged
    counts; returns the stats. See accounting.stats_document for the layout."""
    merged, layout = dict(per_lang), PartLayout(chunks)
    for chunk in layout.chunks():
        counts = merged.setdefault(chunk[0], Counts())
        if layout.name(chunk) not in counts.parts:
            _write_part(counts, chunk, layout, [], output, cfg)
    document = stats_document(merged, languages)
    io.write_json(io.join(output, STATS), document)
    return document


def build(
    p: beam.Pipeline, files: list[InputFile], cfg: CleanConfig, output: str, batch=LOCAL_BATCH
) -> None:
    """Add the cleaning graph to pipeline `p`; `batch`: see LOCAL_BATCH."""
    languages = cfg.language_set()
    read = (
        p
        | "Files" >> beam.Create(files)
        | "Read"
        >> beam.ParDo(ReadFile(cfg, languages, output, batch)).with_outputs(
            "stats", "chunks", "positions", main="batches"
        )
    )
    batch_names = read.batches | "Redistribute" >> beam.Reshuffle()
    chunks = beam.pvalue.AsDict(read.chunks)
    limits = ()
    if cfg.max_docs_per_lang:
        cutoffs = (
            read.positions
            | "FirstPositions" >> beam.combiners.Top.SmallestPerKey(cfg.max_docs_per_lang)
            | "LastAdmitted" >> beam.Map(_last_admitted)
        )
        limits = (beam.pvalue.AsDict(cutoffs),)
    cleaned = batch_names | "Clean" >> beam.ParDo(
        CleanDocuments(cfg, output), chunks, *limits
    ).with_outputs("stats", "dedup", main="kept")
    drops = (
        cleaned.dedup
        | "Dedup" >> beam.GroupByKey()
        | "FindDrops" >> beam.ParDo(FindDrops(output, cfg.boilerplate_min_docs), chunks)
    )
    written = (
        (cleaned.kept, drops)
        | "Pointers" >> beam.Flatten()
        | "GroupByChunk" >> beam.GroupByKey()
        | "WriteParts" >> beam.ParDo(WriteParts(cfg, output), chunks)
    )
    merged = (
        (read.stats, cleaned.stats, written)
        | "FlattenStats" >> beam.Flatten()
        | "MergeStats" >> beam.CombinePerKey(MergeCounts())
    )
    # A side input rather than a ToList combiner, which adds a shuffle and stages: fixed cost.
    _ = (
        p
        | "StatsOnce" >> beam.Create([None])
        | "WriteStats"
        >> beam.Map(
            write_stats,
            beam.pvalue.AsList(merged),
            chunks,
            cfg,
            output,
            sorted(languages or ()),
        )
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
    scratch.clear(output)  # an interrupted run's
    with options.pipeline(beam_args, workers=workers) as p:
        build(p, files, cfg, output, batch_limits(beam_args))
    document = io.read_json(io.join(output, STATS))
    check_accounting(document)
    _remove_stale_parts(output, document)
    scratch.clear(output)
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
