"""One document through the rules, every paragraph counted (without Beam)."""

from __future__ import annotations

from mdeberta.clean_corpus import document_id
from mdeberta.pipelines.accounting import Counts
from mdeberta.pipelines.clean_config import CleanConfig
from mdeberta.pipelines.cleaning import clean_document
from mdeberta.pipelines.read import RawDocument
from mdeberta.pipelines.rules import rule_context


def ctx(lang: str = "en", **settings):
    return rule_context(lang, CleanConfig(**settings))


def test_clean_document_counts_every_paragraph():
    stats = Counts()
    text = "Home | News | Sports | Contact\n" + "A normal sentence of the document. " * 5
    raw = RawDocument("en", 0, 0, text + "\n\x00\x01", len(text) + 3, 3)
    doc = clean_document(raw, ctx(), stats)
    assert doc.paragraphs == (("A normal sentence of the document. " * 5).strip(),)
    assert doc.ref == (document_id("en", "\n".join([text.split("\n")[0], *doc.paragraphs])), 0, 0)
    assert stats.paragraphs_removed["boilerplate"] == 1
    assert stats.paragraphs_removed["empty"] == 1
    assert stats.docs_in == 1 and "too_short" not in stats.removed


def test_clean_document_removal_reasons():
    stats = Counts()
    only_foreign = "Это абзац, написанный кириллицей целиком.\nИ ещё один абзац такой же."
    assert clean_document(RawDocument("en", 0, 0, only_foreign, 60, 2), ctx(), stats) is None
    assert clean_document(RawDocument("en", 0, 1, "", 9, 2, "too_long"), ctx(), stats) is None
    assert stats.removed["wrong_script"] == 1 and stats.paragraphs_removed["wrong_script"] == 2
    assert stats.removed["too_long"] == 1 and stats.paragraphs_removed["too_long"] == 2
