"""Does a vocabulary fit a corpus? Checked before an output is written by `shard` (the vocabulary
against the corpus it tokenises) and by `build-vocab` (the new vocabulary against its corpus).

Two signs that it does not, each a warning with its numbers, or with `strict` a refusal:

- a corpus language the vocabulary was not trained on (its manifest's sample names the languages
  it drew; a vocabulary made elsewhere, whose manifest names none, skips this check);
- byte-fallback pieces above `max_rate` of a language's ids on its first paragraphs: the
  vocabulary spells that language's characters byte by byte, 2-4 ids a character (a vocabulary
  of Latin-script languages gives 86% on Russian text).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

from mdeberta import io
from mdeberta.clean_corpus import Part
from mdeberta.manifest import read_manifest
from mdeberta.vocab.report import language_metrics, report_paragraphs, space_separated
from mdeberta.vocab.tokenizer import load_processor

log = logging.getLogger(__name__)

CHECK_PARAGRAPHS = 1000
"""Paragraphs per language (the first, in file order) the shard job measures the vocabulary on."""


class VocabCoverageError(ValueError):
    """A vocabulary that does not fit the corpus, refused under `strict`."""


def trained_languages(manifest: Mapping) -> list[str] | None:
    """The languages a vocabulary manifest's sample drew paragraphs of; None if it names none."""
    drawn = manifest.get("sample", {}).get("languages")
    if not isinstance(drawn, Mapping):
        return None
    return sorted(k for k, v in drawn.items() if v.get("paragraphs", 0) > 0)


def measure(
    model: bytes, parts: list[Part], limit: int = CHECK_PARAGRAPHS, where: str = "spm.model"
) -> dict[str, dict]:
    """vocab.report's metrics (byte_fallback_rate...) of `model` (the file `where`) per language
    of `parts`, on each language's first `limit` paragraphs."""
    sp = load_processor(model, where)
    by_lang: dict[str, list[Part]] = {}
    for part in parts:
        by_lang.setdefault(part.lang, []).append(part)
    return {
        lang: language_metrics(sp, report_paragraphs(mine, limit), space_separated(lang))
        for lang, mine in sorted(by_lang.items())
    }


def coverage_problems(
    metrics: Mapping[str, Mapping], trained: Collection[str] | None, max_rate: float
) -> list[str]:
    """One line per problem of the languages in `metrics` ({lang: language_metrics})."""
    problems = []
    for lang, m in sorted(metrics.items()):
        if trained is not None and lang not in trained:
            names = ", ".join(sorted(trained)) or "none"
            problems.append(f"{lang}: not among the languages it was trained on ({names})")
        rate = m["byte_fallback_rate"]
        if rate is not None and rate > max_rate:
            problems.append(
                f"{lang}: byte-fallback pieces are {rate:.1%} of its ids on {m['paragraphs']} "
                f"paragraphs (max_byte_fallback {max_rate:.1%})"
            )
    return problems


def check_coverage(problems: list[str], vocab: str, *, strict: bool) -> None:
    """Warn about `problems` of the vocabulary `vocab`, or with `strict` refuse it."""
    if not problems:
        return
    message = f"the vocabulary {io.join(vocab, 'spm.model')} fits the corpus badly: "
    message += "; ".join(problems)
    if strict:
        raise VocabCoverageError(f"{message} (strict: refused)")
    log.warning("warning: %s; with --strict this is an error", message)


def check_vocab_on_corpus(
    vocab: str, model: bytes, parts: list[Part], max_rate: float, *, strict: bool
) -> None:
    """The shard job's check: the vocabulary directory `vocab` (spm.model bytes `model`) on the
    corpus languages of `parts`, each measured on its first CHECK_PARAGRAPHS paragraphs."""
    trained = trained_languages(read_manifest(vocab, kind="vocabulary"))
    metrics = measure(model, parts, where=io.join(vocab, "spm.model"))  # loads it: a bad one fails
    problems = coverage_problems(metrics, trained, max_rate)
    check_coverage(problems, vocab, strict=strict)
