"""`mdeberta build-vocab`: clean corpus -> α-sampled text -> SentencePiece -> vocabulary directory.

    manifest = build_vocab(VocabConfig(corpus="clean/", output="vocab/", vocab_size=250_000))

Steps: check the corpus (its manifest lists exactly its part files; stats), plan the sample
(pipelines.sample_vocab), draw it with Beam (checking each part's sha256 as it is read), check that
the vocabulary size is possible and that the trainer fits in memory, train, write spm.model /
spm.vocab / the Hugging Face tokenizer files / the report, check that the vocabulary fits every
language (vocab.coverage: a warning, or with strict a refusal), and write the manifest last.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict

from mdeberta import io, logs
from mdeberta.clean_corpus import list_parts, read_stats
from mdeberta.config import config_to_dict
from mdeberta.languages import resolve_languages
from mdeberta.lock import locks_output
from mdeberta.manifest import invalidate, write_manifest
from mdeberta.pipelines.paragraphs import sample_files, split_long
from mdeberta.vocab.config import VocabConfig
from mdeberta.vocab.coverage import check_coverage, coverage_problems, trained_languages
from mdeberta.vocab.report import build_report, report_paragraphs, write_report
from mdeberta.vocab.tokenizer import load_model_proto, write_tokenizer_files
from mdeberta.vocab.train import check_vocab_size, plan_memory, train_spm

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
VOCAB_FILES = ("spm.model", "spm.vocab", "tokenizer.json", "tokenizer_config.json")
VOCAB_FILES += ("special_tokens_map.json", "report.json", "report.md")


def read_lines(files: list[str], max_bytes: int) -> Iterator[str]:
    """Lines of the sample files, re-cut if one is too long, so SentencePiece skips none."""
    for url in files:
        with io.open_file(url, "rt") as f:
            for line in f:
                yield from split_long(line.rstrip("\n"), max_bytes)[0]


def proto_dict(message) -> dict:
    """Every field of a protobuf message (defaults included): enums by name, bytes as sha256."""
    out = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if isinstance(value, bytes):
            value = {"sha256": hashlib.sha256(value).hexdigest(), "bytes": len(value)}
        elif field.enum_type is not None:
            value = field.enum_type.values_by_number[value].name
        elif hasattr(value, "extend"):  # a repeated field
            value = list(value)
        out[field.name] = value
    return out


def _languages(cfg: VocabConfig) -> list[str] | None:
    if cfg.languages is None:
        return None
    return resolve_languages(cfg.languages)


def write_vocab_files(out: str, model: bytes) -> dict:
    with io.atomic_write(io.join(out, "spm.model"), "wb") as f:
        f.write(model)
    proto = load_model_proto(model)
    rows = "".join(f"{p.piece}\t{p.score:g}\n" for p in proto.pieces)
    io.write_text(io.join(out, "spm.vocab"), rows)
    return write_tokenizer_files(out, model)


def _report(cfg: VocabConfig, model: bytes, languages: list[str]) -> dict:
    parts = list_parts(cfg.corpus, languages)
    texts = {
        k: list(report_paragraphs([p for p in parts if p.lang == k], cfg.report_paragraphs))
        for k in languages
    }
    compare = None
    if cfg.compare:
        with io.open_file(cfg.compare, "rb") as f:
            compare = f.read()
    report = build_report(model, texts, compare, cfg.compare)
    write_report(cfg.output, report)
    return report


def draw_sample(cfg: VocabConfig, beam_args) -> tuple[dict, list[str]]:
    """Draw the sample into {output}/sample/ (no old parts left there) with the Beam sampling job,
    in a fresh child process (Beam never loads beside the trainer); (its stats, its files)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    sample_dir = io.join(cfg.output, "sample")
    remove(sample_dir)
    job = {
        "alpha": cfg.alpha,
        "sentences": cfg.sentences,
        "max_passes": cfg.max_passes,
        "seed": cfg.seed,
        "max_sentence_bytes": cfg.max_sentence_bytes,
        "languages": _languages(cfg),
        "workers": cfg.workers,
        "beam_args": list(beam_args or []),
    }
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        sample = pool.submit(_sample_job, cfg.corpus, sample_dir, job, logs.verbose()).result()
    if not sample["totals"].get("lines"):
        raise ValueError(f"the sample of {cfg.corpus} is empty: the corpus has no paragraphs")
    return sample, sample_files(sample_dir)


def remove(url: str) -> None:
    """Delete a file or directory tree, if it is there."""
    if io.exists(url):
        fs, path = io.url_to_fs(url)
        fs.rm(path, recursive=True)


def _sample_job(corpus: str, sample_dir: str, job: dict, verbose: bool) -> dict:
    logs.setup(verbose)  # a fresh interpreter: the command's logging setup, again
    # lazy: Beam (~180 MB) loads only in this child process, never beside the trainer
    from mdeberta.pipelines.sample_vocab import sample_job

    return sample_job(corpus, sample_dir, **job)


@locks_output("cfg.output")
def build_vocab(cfg: VocabConfig, beam_args: list[str] | None = None) -> dict:
    """Build the vocabulary directory `cfg.output` from the clean corpus `cfg.corpus`. A failed
    or refused build removes what it wrote (the sample too, unless keep_sample)."""
    if not cfg.corpus or not cfg.output:
        raise ValueError("both corpus and output are required")
    # a complete clean corpus and exactly its files, or a clear error: here, not in the sampling
    # process, and before anything is written
    list_parts(cfg.corpus, _languages(cfg))
    read_stats(cfg.corpus)
    invalidate(cfg.output)  # rebuilding: never look complete midway
    remove(io.join(cfg.output, "sample"))  # and no old sample parts
    try:
        return _build(cfg, beam_args)
    except BaseException:
        for name in VOCAB_FILES:
            remove(io.join(cfg.output, name))
        if cfg.keep_sample and io.exists(io.join(cfg.output, "sample")):
            print(f"mdeberta: kept the sample in {io.join(cfg.output, 'sample')}", file=sys.stderr)
        else:
            remove(io.join(cfg.output, "sample"))
        raise


def _build(cfg: VocabConfig, beam_args: list[str] | None) -> dict:
    clock = _Clock()
    sample, files = draw_sample(cfg, beam_args)
    plan = sample["plan"]
    totals = sample["totals"]
    clock.lap("sample")
    check_vocab_size(read_lines(files, cfg.max_sentence_bytes), cfg)
    memory = plan_memory(cfg, totals["chars"], totals["lines"])
    clock.lap("checks")
    local = all(io.is_local(u) for u in files)
    source = files if local else read_lines(files, cfg.max_sentence_bytes)
    log.info("training SentencePiece on %s lines (%s chars)", totals["lines"], totals["chars"])
    model = _portable(train_spm(source, cfg, memory)[0])
    clock.lap("train")
    special = write_vocab_files(cfg.output, model)
    clock.lap("tokenizer_files")
    report = _report(cfg, model, sorted(plan["languages"]))
    _check_coverage(cfg, report, sample)
    clock.lap("report")
    if not cfg.keep_sample:
        remove(io.join(cfg.output, "sample"))
    seconds = {"wall": clock.laps, "cpu": clock.cpu_laps}
    extra = {"sample": sample, "plan": plan, "memory": memory, "seconds": seconds}
    return _write_manifest(cfg, model, special, **extra)


def _check_coverage(cfg: VocabConfig, report: dict, sample: dict) -> None:
    """Every language the vocabulary is built for drawn into its sample, and none spelled byte by
    byte (on the report's paragraphs): a warning, or with strict a refusal."""
    trained = trained_languages({"sample": sample})
    problems = coverage_problems(report["languages"], trained, cfg.max_byte_fallback)
    check_coverage(problems, cfg.output, strict=cfg.strict)


def _portable(model: bytes) -> bytes:
    """spm.model without the machine's paths: the trainer spec keeps the sample's file names only,
    so the same sample and settings give the same bytes (the vocabulary fingerprint) anywhere."""
    proto = load_model_proto(model)
    names = [name.rsplit("/", 1)[-1] for name in proto.trainer_spec.input]
    del proto.trainer_spec.input[:]
    proto.trainer_spec.input.extend(names)
    return proto.SerializeToString()


class _Clock:
    """Wall and CPU seconds per step, recorded in the manifest (the benchmark reads them)."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self.cpu_laps: dict[str, float] = {}
        self._last = (time.perf_counter(), time.process_time())

    def lap(self, name: str) -> None:
        now = (time.perf_counter(), time.process_time())
        self.laps[name] = round(now[0] - self._last[0], 3)
        self.cpu_laps[name] = round(now[1] - self._last[1], 3)  # this process and its threads
        self._last = now


def _write_manifest(cfg, model: bytes, special: dict, *, sample, plan, memory, seconds) -> dict:
    proto = load_model_proto(model)
    files = {
        name: {"sha256": io.sha256_file(url), "bytes": io.file_size(url)}
        for name in VOCAB_FILES
        if io.exists(url := io.join(cfg.output, name))
    }
    sample_info = {k: v for k, v in sample.items() if k != "plan"}
    return write_manifest(
        cfg.output,
        kind="vocabulary",
        version=FORMAT_VERSION,
        options=config_to_dict(cfg),
        inputs={"corpus": cfg.corpus},
        files=files,
        extra={
            "spm_sha256": hashlib.sha256(model).hexdigest(),
            "vocab_size": len(proto.pieces) + 1,
            "special_ids": special,
            "trainer_spec": proto_dict(proto.trainer_spec),
            "normalizer_spec": proto_dict(proto.normalizer_spec),
            "spm_random_seed": cfg.seed,
            "sampling": plan,
            "sample": sample_info,
            "memory": asdict(memory),
            "seconds": seconds,
        },
    )
