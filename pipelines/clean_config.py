"""CleanConfig: what the cleaning job reads and the thresholds of its rules.

Kept apart from the Beam job so the command line and the rules can use it without importing Beam.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mdeberta.config import check
from mdeberta.languages import resolve_languages


@dataclass
class CleanConfig:
    """What the cleaning job reads and the thresholds of its rules (pipelines/rules.py).

    The defaults keep every normal document of the packaged sample corpus and remove each of its
    deliberate defects (tests/pipelines/test_clean.py checks both).
    """

    languages: str = "all"
    """Languages to keep: a preset (all, xnli, xlmr) or codes such as "en,de,zh-Hans"."""
    max_docs_per_lang: int = 0
    """Read at most this many documents per language, the first ones by file order (0: all)."""
    on_bad_file: Literal["fail", "skip"] = "fail"
    """A truncated or corrupt file: fail naming it, or skip the rest of it, counted as bad_file."""
    normalization: Literal["NFC", "NFKC"] = "NFC"
    """Unicode normal form of the output text. NFKC also folds compatibility forms."""
    min_doc_chars: int = 100
    """Documents shorter than this (after the rules and after dedup) are removed: too_short."""
    max_doc_chars: int = 1_000_000
    """Longer documents are removed: too_long. Reading stops keeping a document's text at 4 bytes
    a character past this, so a huge single line never sits in memory."""
    min_letter_share: float = 0.5
    """Minimum share of letters (with combining marks) among non-space characters."""
    min_script_share: float = 0.5
    """A paragraph whose letters are less than this share in the language's scripts (registry)
    is removed: wrong_script."""
    script_min_letters: int = 10
    """Paragraphs with fewer letters are not judged by script (too little evidence)."""
    max_repeated_paragraph_share: float = 0.3
    """Documents where more than this share of paragraphs repeat an earlier one are removed."""
    boilerplate_max_chars: int = 200
    """Copyright lines and navigation bars count as boilerplate only up to this length."""
    boilerplate_min_docs: int = 3
    """A paragraph found in this many documents of a language or more (cookie notices, share
    lines) is removed from all of them as boilerplate; 0 turns this off."""
    dedup_paragraphs: bool = True
    """Remove paragraphs already kept in another document of the language (cc_net's hash)."""
    dedup_documents: bool = True
    """Remove documents whose normalised paragraphs equal a kept document's."""
    langid: bool = False
    """Check each document's language with fastText lid.176 (needs the `langid` extra).
    Languages it has no label for pass through, counted as langid_unsupported."""
    langid_threshold: float = 0.65
    """Remove a document when lid.176 names another language with at least this confidence."""
    shard_chars: int = 100_000_000
    """Target characters per output file; a language gets ceil(chars / shard_chars) files."""
    zstd_level: int = 3
    """zstd compression level of the output files (1-19)."""

    def __post_init__(self):
        for name in (
            "max_docs_per_lang",
            "min_doc_chars",
            "script_min_letters",
            "boilerplate_max_chars",
            "boilerplate_min_docs",
        ):
            check(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        for name in (
            "min_letter_share",
            "min_script_share",
            "max_repeated_paragraph_share",
            "langid_threshold",
        ):
            value = getattr(self, name)
            check(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")
        check(
            self.max_doc_chars >= max(self.min_doc_chars, 1),
            f"max_doc_chars must be >= min_doc_chars and >= 1, got {self.max_doc_chars}",
        )
        check(
            self.boilerplate_min_docs != 1,
            "boilerplate_min_docs must be 0 (off) or >= 2: a paragraph in 1 document is no "
            "boilerplate",
        )
        check(self.shard_chars > 0, f"shard_chars must be > 0, got {self.shard_chars}")
        check(1 <= self.zstd_level <= 19, f"zstd_level must be in [1, 19], got {self.zstd_level}")
        check(
            self.on_bad_file in ("fail", "skip"),
            f"on_bad_file: fail or skip, not {self.on_bad_file!r}",
        )
        check(
            self.normalization in ("NFC", "NFKC"),
            f"normalization must be NFC or NFKC, got {self.normalization!r}",
        )

    @property
    def max_doc_bytes(self) -> int:
        return 4 * self.max_doc_chars

    def language_set(self) -> set[str] | None:
        """The wanted codes, validated (unknown ones fail with suggestions); None means all."""
        spec = self.languages.strip()
        return None if spec in ("all", "cc100") else set(resolve_languages(spec))
