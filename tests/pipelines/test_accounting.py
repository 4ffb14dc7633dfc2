"""Typed counters and the stats.json layout (the bytes of whole runs: see test_clean.py)."""

from __future__ import annotations

import pytest

from mdeberta.pipelines.accounting import Counts, check_accounting, stats_document


def test_counts_add_up_field_by_field():
    a = Counts(docs_in=3, docs_out=2, chars_read=10)
    a.remove("too_short", paragraphs=2)
    a.parts["part-00000-of-00002.jsonl.zst"] = {"docs": 2}
    b = Counts(docs_in=1, docs_out=1)
    b.remove("too_short", paragraphs=0)
    b.paragraphs_removed["empty"] += 4
    b.parts["part-00001-of-00002.jsonl.zst"] = {"docs": 1}
    total = Counts().add(a).add(b)
    assert (total.docs_in, total.docs_out, total.chars_read) == (4, 3, 10)
    assert total.removed == {"too_short": 2}
    assert total.paragraphs_removed == {"too_short": 2, "empty": 4}
    assert sorted(total.parts) == ["part-00000-of-00002.jsonl.zst", "part-00001-of-00002.jsonl.zst"]
    assert dict(total.metrics()) == {
        "docs_in": 4,
        "docs_out": 3,
        "removed/too_short": 2,
        "paragraphs_removed/too_short": 2,
        "paragraphs_removed/empty": 4,
    }


def test_stats_document_lays_out_languages_and_what_no_language_owns():
    en = Counts(docs_in=2, docs_out=1, paragraphs_in=3, paragraphs_out=2, utf8_repaired=1)
    en.remove("duplicate_doc", paragraphs=1)
    part = {"docs": 1, "bytes": 9, "sha256": "ab"}
    en.parts["part-00000-of-00001.jsonl.zst"] = part
    nobody = Counts(input_files=1)
    nobody.unattributed["bad_json"] += 2
    nobody.other_language["ru"] += 1
    nobody.bad_file_errors["b.xz: corrupt"] += 1
    nobody.bad_file_errors["a.xz: corrupt"] += 1
    doc = stats_document({"en": en, "": nobody}, languages=["sw"])
    assert sorted(doc["languages"]) == ["en", "sw"]
    assert doc["languages"]["sw"] == {
        **dict.fromkeys(("docs_in", "docs_out", "paragraphs_in", "paragraphs_out"), 0),
        **dict.fromkeys(("chars_in", "chars_out", "input_files", "bad_files"), 0),
        "removed": {},
        "paragraphs_removed": {},
        "shards": {},
    }
    entry = doc["languages"]["en"]
    assert entry["utf8_repaired"] == 1 and "docs_over_cap" not in entry  # only where not zero
    assert "chars_read" not in entry  # internal: sizes the output
    assert entry["shards"] == {
        "part-00000-of-00001.jsonl.zst": {"docs": 1, "bytes": 9, "sha256": "ab"}
    }
    totals = doc["totals"]
    assert totals["languages"] == 2 and totals["docs_in"] == 2 and totals["input_files"] == 1
    assert totals["removed"] == {"duplicate_doc": 1}
    assert totals["unattributed"] == {"bad_json": 2} and totals["other_language"] == {"ru": 1}
    assert totals["bad_file_errors"] == ["a.xz: corrupt", "b.xz: corrupt"]
    check_accounting(doc)


def test_accounting_that_does_not_add_up_is_a_bug():
    broken = Counts(docs_in=2, docs_out=1)
    with pytest.raises(AssertionError, match="en: docs do not add up"):
        check_accounting(stats_document({"en": broken}))
