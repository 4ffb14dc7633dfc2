"""What every NLI loader fills: the label order, labelled pairs, the rows skipped, source specs.

eval/data.py (files) and eval/hub.py (Hugging Face datasets) both build `NLIData`; labels are
matched by name into LABELS order, never by index.
"""

from __future__ import annotations

import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

LABELS = ("entailment", "neutral", "contradiction")
LABEL_IDS = {name: i for i, name in enumerate(LABELS)}
LABEL_ALIASES = {"contradictory": "contradiction"}  # XNLI-MT's spelling
NO_GOLD = "no_gold_label"  # skipped by design (MultiNLI "-", hub -1), not malformed
_EXAMPLES_KEPT = 5


class DataError(ValueError):
    """A data source that cannot be used as asked; the message says why and what would work."""


@dataclass(frozen=True, slots=True)
class Pair:
    premise: str
    hypothesis: str
    label: int  # index into LABELS
    language: str


@dataclass
class NLIData:
    """The pairs of one source and role, and what was skipped on the way (reason -> rows)."""

    source: str
    wanted: frozenset[str] = frozenset()  # languages whose pairs are kept (all rows are checked)
    pairs: dict[str, list[Pair]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # every language met, for error messages
    skipped: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)  # the first few malformed rows
    rows: int = 0

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        if reason != NO_GOLD and len(self.examples) < _EXAMPLES_KEPT:
            self.examples.append(f"{where}: {reason}")

    def add(self, premise, hypothesis, label: str | None, language: str, where: str) -> None:
        """Count one source row; keep it if it is a well-formed pair in a wanted language."""
        self.rows += 1
        self.seen.add(language)
        index = label_id(label)
        if index is None:
            reason = NO_GOLD if label in (None, "-", "") else "unknown_label"
            return self.skip(reason, where)
        if not isinstance(premise, str) or not isinstance(hypothesis, str):
            return self.skip("missing_text", where)
        if not premise.strip() or not hypothesis.strip():
            return self.skip("empty_text", where)
        if language in self.wanted:
            self.pairs.setdefault(language, []).append(Pair(premise, hypothesis, index, language))

    @property
    def malformed(self) -> int:
        return sum(n for reason, n in self.skipped.items() if reason != NO_GOLD)

    def summary(self) -> dict:
        return {
            "source": self.source,
            "rows": self.rows,
            "pairs": {lang: len(p) for lang, p in sorted(self.pairs.items())},
            "skipped": dict(sorted(self.skipped.items())),
            "malformed_examples": list(self.examples),
        }


def label_id(name) -> int | None:
    """Our index of a label name in any source's spelling; None if it is not an NLI label."""
    if not isinstance(name, str):
        return None
    name = name.strip().lower()
    return LABEL_IDS.get(LABEL_ALIASES.get(name, name))


@dataclass(frozen=True)
class Source:
    kind: str
    location: str
    params: dict = field(default_factory=dict)

    def __str__(self) -> str:
        query = f"?{urllib.parse.urlencode(self.params)}" if self.params else ""
        return f"{self.kind}:{self.location}{query}"
