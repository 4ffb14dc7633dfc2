"""`mdeberta extend-vocab`: a base vocabulary + a clean corpus -> an extended vocabulary directory.

    manifest = extend_vocab(ExtendVocabConfig(base="mdeberta-v3-base/", corpus="clean-am/",
                                              output="vocab-am/", add=8000))

Steps: read the base (spm.model of a vocabulary directory, checked against its manifest, or of a
Hugging Face model directory; a unigram model with [PAD] [CLS] [SEP] [UNK] at ids 0-3), draw an
α-sampled sample of the corpus as build-vocab does, normalise it as the base normalises text, train
a unigram model of `candidates` pieces on it (more while it yields too few pieces the base lacks),
keep the `add` most probable pieces the base lacks with their scores placed on the base's scale
(vocab/extend_pieces.py), and write the directory: spm.model (base ids unchanged, [MASK] kept,
new pieces after it), spm.vocab, the Hugging Face tokenizer files, extension.json (each new
piece's id, score and base segmentation: the trainer initialises its embedding from those rows),
report.json / report.md (vocab/extend_report.py) and the manifest last. The manifest records the
base's spm.model sha256 under "extension": the trainer recognises shards of this vocabulary as an
extension of a model whose spm.model has that sha256.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from mdeberta import io
from mdeberta.clean_corpus import list_parts, read_stats
from mdeberta.config import config_to_dict
from mdeberta.languages import resolve_languages
from mdeberta.lock import locks_output
from mdeberta.manifest import MANIFEST, invalidate, write_manifest
from mdeberta.vocab.build import (
    VOCAB_FILES,
    draw_sample,
    proto_dict,
    read_lines,
    remove,
    write_vocab_files,
)
from mdeberta.vocab.coverage import trained_languages
from mdeberta.vocab.extend_config import ExtendVocabConfig
from mdeberta.vocab.extend_pieces import (
    base_segmentations,
    check_unigram,
    extended_model,
    new_pieces,
    normalizer,
    placed_scores,
)
from mdeberta.vocab.extend_report import change_report, write_change_report
from mdeberta.vocab.report import report_paragraphs
from mdeberta.vocab.tokenizer import check_special_pieces, load_model_proto, mask_id, num_ids
from mdeberta.vocab.train import VocabSizeError, VocabTooSmallError, plan_memory, train_spm

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
EXTENSION = "extension.json"
MAX_TRAININGS = 6  # candidate models trained at most (the size doubles while too few are new)


def read_base(url: str) -> tuple[bytes, dict | None]:
    """(spm.model bytes, its vocabulary manifest or None) of the base, checked."""
    model_url = io.join(url, "spm.model")
    if not io.exists(model_url):
        raise FileNotFoundError(
            f"{model_url} not found: --base must be a vocabulary directory or a Hugging Face "
            "model directory with an spm.model"
        )
    with io.open_file(model_url, "rb", compression=None) as f:
        model = f.read()
    manifest = None
    if io.exists(io.join(url, MANIFEST)):
        found = io.read_json(io.join(url, MANIFEST))
        if found.get("kind") == "vocabulary":
            manifest = found
            sha = hashlib.sha256(model).hexdigest()
            if sha != manifest.get("spm_sha256"):
                raise ValueError(
                    f"{model_url} has sha256 {sha}, its manifest records {manifest['spm_sha256']}"
                )
    try:
        proto = load_model_proto(model)
    except Exception as e:  # protobuf's DecodeError: not worth importing protobuf for
        raise ValueError(f"{model_url} is not a SentencePiece model ({e})") from None
    check_unigram(proto, model_url)
    check_special_pieces(proto)
    return model, manifest


def _languages(cfg: ExtendVocabConfig) -> list[str] | None:
    return resolve_languages(cfg.languages) if cfg.languages else None


def _check_inputs(cfg: ExtendVocabConfig) -> None:
    if not (cfg.base and cfg.corpus and cfg.output):
        raise ValueError("base, corpus and output are all required")
    if cfg.add < 1:
        raise ValueError(f"--add must be >= 1 (the number of pieces to add), got {cfg.add}")
    list_parts(cfg.corpus, _languages(cfg))
    read_stats(cfg.corpus)
    if cfg.check_corpus:
        list_parts(cfg.check_corpus)


@locks_output("cfg.output")
def extend_vocab(cfg: ExtendVocabConfig, beam_args: list[str] | None = None) -> dict:
    """Write the vocabulary `cfg.base` extended with `cfg.add` pieces of `cfg.corpus`."""
    _check_inputs(cfg)
    base, base_manifest = read_base(cfg.base)
    base_proto = load_model_proto(base)
    invalidate(cfg.output)  # rewriting: never look complete midway
    trainer = {
        "byte_fallback": False,  # the base has the byte pieces; only real pieces are candidates
        "split_digits": base_proto.trainer_spec.split_digits,
        "normalization": "identity",  # the sample is normalised by the base's own normalizer
        "max_piece_length": base_proto.trainer_spec.max_sentencepiece_length or 16,
    }
    sample, files = draw_sample(cfg.sample_settings(16, **trainer), beam_args)
    normalize = normalizer(base_proto)

    def lines():
        return (normalize(line) for line in read_lines(files, cfg.max_sentence_bytes))

    candidates, size = _learn(cfg, trainer, base_proto, sample["totals"], lines)
    chosen = new_pieces(candidates, base_proto)
    if len(chosen) < cfg.add:
        raise ValueError(
            f"{cfg.corpus} supplies only {len(chosen)} pieces that {cfg.base} lacks (a unigram "
            f"model of {size} pieces of its sample): use --add {len(chosen)} or less, or more text"
        )
    pieces, offset = placed_scores(chosen[: cfg.add], candidates, base_proto)
    model = extended_model(base_proto, pieces)
    first_new = num_ids(base_proto)
    special = write_vocab_files(cfg.output, model)
    record = _base_record(cfg.base, base, base_proto)
    segmentations = base_segmentations(base_proto, [p for p, _ in pieces])
    _write_extension(cfg.output, record, pieces, segmentations, first_new)
    report = change_report(base, model, first_new, _report_texts(cfg))
    write_change_report(cfg.output, report, cfg.base)
    if not cfg.keep_sample:
        remove(io.join(cfg.output, "sample"))
    extension = {
        "base": record,
        "added": len(pieces),
        "first_new_id": first_new,
        "candidates": size,
        "score_offset": offset,
        "sample": sample,
        "file": EXTENSION,
    }
    return _write_manifest(cfg, model, special, extension, base_manifest)


def _learn(
    cfg: ExtendVocabConfig,
    trainer: dict,
    base_proto,
    totals: dict,
    lines: Callable[[], Iterator[str]],
) -> tuple[Any, int]:
    """The candidate model (ModelProto) and its size: `candidates` pieces, or 4 x add doubled
    while it has fewer than `add` pieces the base lacks, within what the text supports."""
    size = cfg.candidates or max(4 * cfg.add, 64)
    largest = None
    for _ in range(MAX_TRAININGS):
        settings = cfg.sample_settings(size, **trainer)
        memory = plan_memory(settings, totals["chars"], totals["lines"])
        log.info("training a unigram model of %s pieces on the corpus sample", size)
        try:
            model = load_model_proto(train_spm(lines(), settings, memory)[0])
        except VocabSizeError as e:  # the text supports fewer pieces: take as many as it does
            size = largest = e.largest
            continue
        except VocabTooSmallError as e:  # its characters alone need more
            size = e.needed + cfg.add
            continue
        if cfg.candidates or size == largest or len(new_pieces(model, base_proto)) >= cfg.add:
            return model, size
        size *= 2
    raise ValueError(f"no unigram model of {cfg.corpus} after {MAX_TRAININGS} tries")


def _base_record(url: str, model: bytes, proto) -> dict:
    return {
        "url": str(url),
        "spm_sha256": hashlib.sha256(model).hexdigest(),
        "vocab_size": num_ids(proto),
        "mask_id": mask_id(proto),
    }


def _write_extension(out: str, base: dict, pieces, segmentations, first_new: int) -> None:
    """extension.json: the base, then every new piece with its id, score and base ids."""
    rows = [
        {"id": first_new + i, "piece": piece, "score": score, "base_ids": ids}
        for i, ((piece, score), ids) in enumerate(zip(pieces, segmentations, strict=True))
    ]
    body = {"format_version": FORMAT_VERSION, "base": base, "pieces": rows}
    io.write_json(io.join(out, EXTENSION), body)


def _report_texts(cfg: ExtendVocabConfig) -> dict[str, dict[str, list[str]]]:
    texts = {"new": _paragraphs(cfg.corpus, _languages(cfg), cfg.report_paragraphs)}
    if cfg.check_corpus:
        texts["check"] = _paragraphs(cfg.check_corpus, None, cfg.report_paragraphs)
    return texts


def _paragraphs(corpus: str, languages, limit: int) -> dict[str, list[str]]:
    parts = list_parts(corpus, languages)
    by_lang: dict[str, list] = {}
    for part in parts:
        by_lang.setdefault(part.lang, []).append(part)
    return {lang: list(report_paragraphs(mine, limit)) for lang, mine in sorted(by_lang.items())}


def _write_manifest(cfg, model: bytes, special: dict, extension: dict, base_manifest) -> dict:
    proto = load_model_proto(model)
    names = [*VOCAB_FILES, EXTENSION]
    files = {
        name: {"sha256": io.sha256_file(url), "bytes": io.file_size(url)}
        for name in names
        if io.exists(url := io.join(cfg.output, name))
    }
    inputs = {"corpus": cfg.corpus}
    if cfg.check_corpus:
        inputs["check_corpus"] = cfg.check_corpus
    if base_manifest is not None:
        inputs["base"] = cfg.base
    extra = {
        "spm_sha256": hashlib.sha256(model).hexdigest(),
        "vocab_size": num_ids(proto),
        "special_ids": special,
        "trainer_spec": proto_dict(proto.trainer_spec),
        "normalizer_spec": proto_dict(proto.normalizer_spec),
        "extension": extension,
    }
    trained = trained_languages(base_manifest or {})
    if trained is not None:  # what the shard stage checks a corpus against: base and new languages
        drawn = extension["sample"]["languages"]
        languages = {k: base_manifest["sample"]["languages"][k] for k in trained}
        languages.update({k: v for k, v in drawn.items() if v.get("paragraphs", 0) > 0})
        extra["sample"] = {"languages": dict(sorted(languages.items()))}
    return write_manifest(
        cfg.output,
        kind="vocabulary",
        version=FORMAT_VERSION,
        options=config_to_dict(cfg),
        inputs=inputs,
        files=files,
        extra=extra,
    )
