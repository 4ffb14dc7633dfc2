"""What the cleaning job counts, and stats.json: every document and paragraph in is out or removed
for one reason.

Each step counts into a `Counts` per language (the language "" holds what no language can be
named for: JSONL lines without one, files named after none). Beam steps emit (lang, Counts) per
bundle, `MergeCounts` (pipelines.clean) sums them with `Counts.add`, and `stats_document` lays the
sums out as stats.json (docs/formats.md).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

COUNTERS = ("docs_in", "docs_out", "paragraphs_in", "paragraphs_out", "chars_in", "chars_out",
            "input_files", "bad_files")  # fmt: skip
"""The counters stats.json gives every language, zero or not."""
OPTIONAL = ("utf8_repaired", "langid_unsupported", "docs_over_cap")
"""Counters stats.json gives a language only where they are not zero."""


@dataclass
class Counts:
    """The counters of one language, summed over documents, files, bundles and workers."""

    docs_in: int = 0
    docs_out: int = 0
    paragraphs_in: int = 0
    paragraphs_out: int = 0
    chars_in: int = 0
    chars_out: int = 0
    input_files: int = 0
    bad_files: int = 0
    """Files that could not be read to the end (on_bad_file = skip)."""
    utf8_repaired: int = 0
    """Documents whose invalid UTF-8 was dropped while decoding."""
    langid_unsupported: int = 0
    """Documents of a language lid.176 has no label for: passed without the language check."""
    docs_over_cap: int = 0
    """Documents past max_docs_per_lang (not in docs_in)."""
    chars_read: int = 0
    """Characters of the documents admitted: the language's number of part files comes from it
    before cleaning starts (not in stats.json)."""
    removed: Counter[str] = field(default_factory=Counter)
    """Documents per removal reason (a rule's name, or duplicate_doc...)."""
    paragraphs_removed: Counter[str] = field(default_factory=Counter)
    """Paragraphs per removal reason; a removed document's paragraphs go under its reason."""
    parts: dict[str, dict] = field(default_factory=dict)
    """Part files written: name -> {docs, bytes, sha256}."""
    unattributed: Counter[str] = field(default_factory=Counter)
    """Language "" only: JSONL lines that name no known language, per reason."""
    other_language: Counter[str] = field(default_factory=Counter)
    """Language "" only: JSONL lines of languages not asked for, per language."""
    bad_file_errors: Counter[str] = field(default_factory=Counter)
    """Language "" only: the error of each bad file skipped."""

    def remove(self, reason: str, paragraphs: int) -> None:
        """Account a removed document: one doc and its remaining paragraphs under `reason`."""
        self.removed[reason] += 1
        if paragraphs:
            self.paragraphs_removed[reason] += paragraphs

    def add(self, other: Counts) -> Counts:
        """Add `other` into these counts (part files are written once, so they never clash)."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, int):
                setattr(self, f.name, mine + theirs)
            else:
                mine.update(theirs)  # Counter.update adds; dict.update (parts) inserts
        return self

    def metrics(self) -> Iterator[tuple[str, int]]:
        """(name, value) of the rules' counters, for Beam metrics: docs_in, removed/too_short..."""
        for name in (*COUNTERS, *OPTIONAL):
            if value := getattr(self, name):
                yield name, value
        for group in ("removed", "paragraphs_removed"):
            for reason, n in getattr(self, group).items():
                yield f"{group}/{reason}", n


def counts_of(per_lang: dict[str, Counts], lang: str) -> Counts:
    """The Counts of `lang` in `per_lang`, added if new."""
    counts = per_lang.get(lang)
    if counts is None:
        counts = per_lang[lang] = Counts()
    return counts


def stats_document(per_lang: Mapping[str, Counts], languages: Sequence[str] = ()) -> dict:
    """{"languages": {lang: {docs_in, docs_out, ..., removed: {reason: docs},
    paragraphs_removed: {reason: paragraphs}, shards: {file: {docs, bytes, sha256}}}},
    "totals": {sums, unattributed, other_language, bad_file_errors}}; `languages` get entries
    even when empty."""
    per_lang = dict(per_lang)
    other = per_lang.pop("", Counts())
    out = {lang: _entry(per_lang.get(lang, Counts())) for lang in sorted({*per_lang, *languages})}
    totals: dict[str, Any] = {"languages": len(out)}
    for entry in out.values():
        for key, value in entry.items():
            if isinstance(value, int):
                totals[key] = totals.get(key, 0) + value
            elif key in ("removed", "paragraphs_removed"):
                reasons = totals.setdefault(key, {})
                for reason, n in value.items():
                    reasons[reason] = reasons.get(reason, 0) + n
    for key in (*COUNTERS, *OPTIONAL):  # e.g. input_files of JSONL files named after no language
        if value := getattr(other, key):
            totals[key] = totals.get(key, 0) + value
    for key in ("unattributed", "other_language"):
        if value := getattr(other, key):
            totals[key] = dict(sorted(value.items()))
    if other.bad_file_errors:
        totals["bad_file_errors"] = sorted(other.bad_file_errors)
    return {"languages": out, "totals": totals}


def _entry(counts: Counts) -> dict:
    entry: dict[str, Any] = {k: getattr(counts, k) for k in COUNTERS}
    entry.update((k, v) for k in OPTIONAL if (v := getattr(counts, k)))
    entry["removed"] = dict(sorted(counts.removed.items()))
    entry["paragraphs_removed"] = dict(sorted(counts.paragraphs_removed.items()))
    entry["shards"] = dict(sorted(counts.parts.items()))
    return entry


def check_accounting(document: dict) -> None:
    """Every document and paragraph in is out or removed for one reason; a failure is a bug."""
    for lang, s in document["languages"].items():
        for unit in ("docs", "paragraphs"):
            removed = s["removed" if unit == "docs" else "paragraphs_removed"]
            if s[f"{unit}_in"] != s[f"{unit}_out"] + sum(removed.values()):
                raise AssertionError(f"{lang}: {unit} do not add up: {json.dumps(s)}")
