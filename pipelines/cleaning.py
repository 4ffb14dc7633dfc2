"""One document through the cleaning: a RawDocument in, a Document for deduplication (or None)
out, every paragraph counted. Pure Python: the Beam job (pipelines.clean) and the benchmark's
plain loop call it alike.
"""

from __future__ import annotations

from collections import Counter

from mdeberta.clean_corpus import document_id
from mdeberta.pipelines.accounting import Counts
from mdeberta.pipelines.dedup import Document, dedup_hash
from mdeberta.pipelines.read import RawDocument
from mdeberta.pipelines.rules import (
    DOCUMENT_RULES,
    PARAGRAPH_RULES,
    RuleContext,
    normalize_paragraph,
    repeated_paragraphs,
    wrong_language,
)


def clean_document(raw: RawDocument, ctx: RuleContext, counts: Counts) -> Document | None:
    """Normalise one document and apply every rule; count what happened in `counts`.

    Paragraph rules drop paragraphs; a document left with none is removed for the reason that
    dropped most of them. Document rules then judge what is left, first match wins.
    """
    counts.docs_in += 1
    counts.chars_in += raw.chars
    counts.paragraphs_in += raw.paragraphs
    if raw.repaired:
        counts.utf8_repaired += 1
    if raw.flag:
        counts.remove(raw.flag, raw.paragraphs)
        return None
    form = ctx.cfg.normalization
    paragraphs = [p for p in (normalize_paragraph(x, form) for x in raw.text.split("\n")) if p]
    dropped: Counter[str] = Counter()
    if raw.paragraphs > len(paragraphs):
        dropped["empty"] = raw.paragraphs - len(paragraphs)
    hashes = [dedup_hash(p) for p in paragraphs]
    doc_id = document_id(raw.lang, "\n".join(paragraphs))
    if repeated_paragraphs(hashes, ctx):
        return _drop(counts, "repeated_paragraphs", len(paragraphs), dropped)
    kept, kept_hashes = [], []
    for paragraph, h in zip(paragraphs, hashes, strict=True):
        reason = next((r.__name__ for r in PARAGRAPH_RULES if r(paragraph, ctx)), None)
        if reason:
            dropped[reason] += 1
        else:
            kept.append(paragraph)
            kept_hashes.append(h)
    if not kept:
        reason = max(sorted(dropped), key=dropped.__getitem__) if dropped else "empty"
        return _drop(counts, reason, 0, dropped)
    for rule in DOCUMENT_RULES:
        if rule(kept, ctx):
            return _drop(counts, rule.__name__, len(kept), dropped)
    if ctx.cfg.langid:
        if ctx.lid_label is None:
            counts.langid_unsupported += 1
        elif wrong_language(kept, ctx):
            return _drop(counts, "wrong_language", len(kept), dropped)
    counts.paragraphs_removed.update(dropped)
    return Document((doc_id, raw.source, raw.position), raw.lang, tuple(kept), tuple(kept_hashes))


def _drop(counts: Counts, reason: str, paragraphs: int, dropped: Counter[str]) -> None:
    counts.paragraphs_removed.update(dropped)
    counts.remove(reason, paragraphs)
    return None
