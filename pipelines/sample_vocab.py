"""The vocabulary sample: α-sampled paragraphs of a clean corpus, as plain text for SentencePiece.

    sample = sample_job(corpus, out_dir, alpha=0.3, sentences=10_000_000, max_passes=10,
                        seed=12345, max_sentence_bytes=8192)   # = plan + run_sample

`mdeberta build-vocab` runs it (Beam options on its command line go to this job, e.g. to run it
on Dataflow; `--keep-sample` keeps what it drew).

Each paragraph of each document is drawn `copies(plan.passes(lang), seed, lang, f"{id}:{i}")`
times (pipelines.sampling; the same draw as its ApplySampling transform, done inside the reading
step so that undrawn paragraphs never become Beam elements). A paragraph longer than
`max_sentence_bytes` is cut at sentence ends, then at spaces, then at character boundaries, and
counted: SentencePiece silently skips lines over its max_sentence_length, so none reach it.
Lines go to `{out}/part-NNNNN-of-MMMMM.txt`, assigned to a file by a hash and sorted inside it, so
the sample is byte-identical whatever the number of workers; `{out}/stats.json` holds
per-language counts (paragraphs seen and drawn, lines, chars, split paragraphs) and the plan.
"""

from __future__ import annotations

import hashlib

import apache_beam as beam

from mdeberta import io
from mdeberta.clean_corpus import list_parts, read_stats
from mdeberta.pipelines.options import pipeline
from mdeberta.pipelines.paragraphs import read_paragraphs, split_long
from mdeberta.pipelines.sampling import SamplingPlan, copies, plan_sampling, sizes_from_stats

TARGET_FILE_CHARS = 256 << 20  # ~256 MB of text per sample file


def vocab_sampling_plan(
    stats: dict, *, alpha: float, sentences: int, max_passes: float, languages=None
) -> SamplingPlan:
    """p_i from clean characters; the target counts paragraphs (paragraphs_out)."""
    chars = sizes_from_stats(stats, "chars_out", languages)
    chars = {k: v for k, v in chars.items() if v > 0}
    if not chars:
        raise ValueError("the clean corpus has no text (chars_out is 0 for every language)")
    paragraphs = sizes_from_stats(stats, "paragraphs_out", sorted(chars))
    return plan_sampling(chars, alpha, sentences, max_passes, units=paragraphs)


# the Beam job


def _sort_key(seed: int, lang: str, key: str, copy: int) -> int:
    data = f"{seed}\x00{lang}\x00{key}\x00{copy}".encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _add(total: dict[str, int], counts: dict[str, int]) -> None:
    for k, v in counts.items():
        total[k] = total.get(k, 0) + v


class _SampleFile(beam.DoFn):
    """A clean_corpus.Part -> (file index, (sort key, line)) for every drawn line, and one
    (lang, counts) stats record per part file (whose sha256 is checked as it is read).

    Reading, drawing and cutting happen in this one step: a vocabulary sample keeps a small share
    of a large corpus, and paragraphs that are not drawn never become Beam elements. The draw is
    pipelines.sampling.copies, as in ApplySampling, keyed by "{doc id}:{paragraph index}".
    """

    STATS = "stats"

    def __init__(self, passes: dict[str, float], seed: int, num_files: int, max_bytes: int):
        self._passes, self._seed = passes, seed
        self._num_files, self._max_bytes = num_files, max_bytes

    def process(self, part):
        lang = part.lang
        passes = self._passes.get(lang, 0.0)
        counts: dict[str, int] = {"paragraphs_seen": 0}
        for _, key, paragraph in read_paragraphs(part):
            counts["paragraphs_seen"] += 1
            for copy in range(copies(passes, self._seed, lang, key)):
                lines, kind = split_long(paragraph, self._max_bytes)
                order = _sort_key(self._seed, lang, key, copy)
                for i, line in enumerate(lines):
                    yield (order % self._num_files, (order, i, line))
                drawn = {"paragraphs": 1, "lines": len(lines), "chars": sum(map(len, lines))}
                if kind is not None:
                    drawn |= {"split_paragraphs": 1, f"split_at_{kind}": 1}
                _add(counts, drawn)
        beam.metrics.Metrics.counter("sampling", f"seen/{lang}").inc(counts["paragraphs_seen"])
        beam.metrics.Metrics.counter("sampling", f"drawn/{lang}").inc(counts.get("paragraphs", 0))
        yield beam.pvalue.TaggedOutput(self.STATS, (lang, counts))


def _sum_counts(dicts) -> dict:
    total: dict[str, int] = {}
    for d in dicts:
        _add(total, d)
    return total


def _write_file(out_dir: str, num_files: int):
    def write(item):
        index, rows = item
        name = f"part-{index:05d}-of-{num_files:05d}.txt"
        with io.atomic_write(io.join(out_dir, name), "wt") as f:
            for _, _, line in sorted(rows):
                f.write(line + "\n")
        return name

    return write


def _write_stats(out_dir: str, plan: SamplingPlan):
    def write(per_lang: list[tuple[str, dict]]):
        languages = dict(sorted(per_lang))
        stats = {"languages": languages, "totals": _sum_counts(languages.values())}
        stats["plan"] = plan.to_dict()
        io.write_json(io.join(out_dir, "stats.json"), stats)

    return write


def expected_chars(plan: SamplingPlan, stats: dict) -> float:
    per_lang = stats["languages"]
    return sum(lp.passes * per_lang[k]["chars_out"] for k, lp in plan.languages.items())


def run_sample(
    corpus: str,
    out_dir: str,
    plan: SamplingPlan,
    *,
    seed: int,
    stats: dict,
    max_sentence_bytes: int,
    workers: int = 1,
    beam_args: list[str] | None = None,
) -> dict:
    """Run the sampling job; returns the sample's stats.json content."""
    langs = [k for k, lp in plan.languages.items() if lp.passes > 0]
    files = list_parts(corpus, langs)
    num_files = max(1, round(expected_chars(plan, stats) / TARGET_FILE_CHARS))
    io.makedirs(out_dir)
    with pipeline(beam_args or (), workers=workers) as p:
        passes = {k: lp.passes for k, lp in plan.languages.items()}
        lines, counts = (
            p
            | "Files" >> beam.Create(files)  # Create reshuffles: files spread over the workers
            | "Sample"
            >> beam.ParDo(_SampleFile(passes, seed, num_files, max_sentence_bytes)).with_outputs(
                _SampleFile.STATS, main="lines"
            )
        )
        _ = (
            lines
            | "ByFile" >> beam.GroupByKey()
            | "Write" >> beam.Map(_write_file(out_dir, num_files))
        )
        _ = (
            counts
            | "CountPerLang" >> beam.CombinePerKey(_sum_counts)
            | "AllLangs" >> beam.combiners.ToList()
            | "WriteStats" >> beam.Map(_write_stats(out_dir, plan))
        )
    return io.read_json(io.join(out_dir, "stats.json"))


def sample_job(
    corpus: str,
    out_dir: str,
    *,
    alpha: float,
    sentences: int,
    max_passes: float,
    seed: int,
    max_sentence_bytes: int,
    languages: list[str] | None = None,
    workers: int = 1,
    beam_args: list[str] | None = None,
) -> dict:
    """Plan and draw the sample of `corpus` into `out_dir`; returns its stats.json content.

    Plain arguments in, plain dicts out: build-vocab runs it in a child process, so that Beam
    (~180 MB resident) is never loaded beside the SentencePiece trainer.
    """
    stats = read_stats(corpus)
    plan = vocab_sampling_plan(
        stats, alpha=alpha, sentences=sentences, max_passes=max_passes, languages=languages
    )
    return run_sample(
        corpus,
        out_dir,
        plan,
        seed=seed,
        stats=stats,
        max_sentence_bytes=max_sentence_bytes,
        workers=workers,
        beam_args=beam_args,
    )
