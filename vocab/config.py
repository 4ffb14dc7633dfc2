"""VocabConfig: every setting of `mdeberta build-vocab`, recorded whole in the manifest; its
SampleConfig part is shared with `mdeberta extend-vocab` (vocab/extend_config.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from mdeberta.config import check

NORMALIZATIONS = ("nmt_nfkc", "nfkc", "nmt_nfkc_cf", "nfkc_cf", "identity")


@dataclass
class SampleConfig:
    """What build-vocab and extend-vocab share: the clean corpus, its α-sample, the trainer's
    resources and the report."""

    corpus: str = ""
    """Clean corpus directory (any fsspec URL): the part files its manifest lists, stats.json."""
    output: str = ""
    """Vocabulary directory to write (any fsspec URL)."""
    languages: str | None = None
    """Comma-separated corpus codes to use; None = every language in the corpus stats."""
    alpha: float = 0.3
    """Language sampling exponent: q_i ∝ p_i^alpha with p_i from the clean corpus characters."""
    sentences: int = 10_000_000
    """Target number of paragraphs drawn for training (long ones are split into sentences). About
    20 bytes of RAM per character: 10M paragraphs of ~200 characters need ~45 GB."""
    max_passes: float = 10.0
    """At most this many copies of a language's text in the sample (small languages are repeated
    to reach their α share only up to here; the rest of the target goes to the others)."""
    seed: int = 12345
    """Seed of the paragraph sample and of SentencePiece's random generator."""
    character_coverage: float = 0.9999
    """Share of characters covered by single-character pieces; the rarest rest use byte fallback."""
    max_sentence_bytes: int = 8192
    """Longest training line in UTF-8 bytes; longer paragraphs are split at sentence ends, then at
    spaces, then at character boundaries (SentencePiece would silently drop them)."""
    num_threads: int = 0
    """SentencePiece trainer threads; 0 = every core of the machine."""
    memory_limit_gb: float = 0.0
    """RAM the trainer may use; 0 = 90% of the memory available now."""
    on_memory_exceeded: Literal["lower", "error"] = "lower"
    """When the sample needs more RAM than the limit: "lower" trains on a random subset that fits
    (with a warning), "error" stops before training."""
    workers: int = 1
    """Beam workers for the sampling job (local FnApiRunner; >1 uses multi-processing)."""
    keep_sample: bool = False
    """Keep the sampled training text in {output}/sample/ (it can be gigabytes)."""
    report_paragraphs: int = 1000
    """Paragraphs per language, read from the start of the clean corpus, for report.json."""

    def __post_init__(self):
        check(0 < self.alpha <= 1, f"alpha must be in (0, 1], got {self.alpha}")
        check(self.sentences > 0, f"sentences must be > 0, got {self.sentences}")
        check(self.max_passes > 0, f"max_passes must be > 0, got {self.max_passes}")
        check(
            0.9 <= self.character_coverage <= 1.0,
            f"character_coverage must be in [0.9, 1], got {self.character_coverage}",
        )
        check(
            256 <= self.max_sentence_bytes <= 1 << 20,
            f"max_sentence_bytes must be in [256, 1048576], got {self.max_sentence_bytes}",
        )
        check(self.num_threads >= 0, f"num_threads must be >= 0, got {self.num_threads}")
        check(
            self.memory_limit_gb >= 0, f"memory_limit_gb must be >= 0, got {self.memory_limit_gb}"
        )
        check(self.workers >= 1, f"workers must be >= 1, got {self.workers}")
        check(
            self.report_paragraphs >= 0,
            f"report_paragraphs must be >= 0, got {self.report_paragraphs}",
        )

    @property
    def threads(self) -> int:
        return self.num_threads or os.cpu_count() or 1


@dataclass
class VocabConfig(SampleConfig):
    vocab_size: int = 250_000
    """Pieces in spm.model, including [PAD] [CLS] [SEP] [UNK] and the 256 byte pieces; [MASK] is
    added after them, so the tokenizer has vocab_size + 1 ids (mDeBERTa: 250,101 + [MASK])."""
    byte_fallback: bool = True
    """Encode characters outside the vocabulary as UTF-8 byte pieces instead of [UNK]."""
    split_digits: bool = True
    """Give every digit its own piece (numbers are not memorised as whole pieces)."""
    normalization: str = "nmt_nfkc"
    """SentencePiece normalization rule: nmt_nfkc (XLM-R, mT5), nfkc, nmt_nfkc_cf, nfkc_cf or
    identity."""
    max_piece_length: int = 16
    """Longest piece in characters (SentencePiece's max_sentencepiece_length)."""
    seed_sentencepiece_size: int = 1_000_000
    """Seed pieces kept from the suffix array before EM pruning."""
    compare: str | None = None
    """Another SentencePiece model (e.g. mDeBERTa's spm.model) to report beside ours."""
    max_byte_fallback: float = 0.05
    """Most byte-fallback pieces among a language's ids (on the report's paragraphs) before the
    vocabulary is said not to fit that language (a warning, or with strict an error)."""
    strict: bool = False
    """Refuse to write a vocabulary that does not fit its corpus (a language with no paragraph in
    the sample, or byte-fallback above max_byte_fallback) instead of warning."""

    def __post_init__(self):
        super().__post_init__()
        check(self.vocab_size >= 16, f"vocab_size must be >= 16, got {self.vocab_size}")
        check(
            self.normalization in NORMALIZATIONS,
            f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {self.normalization!r}",
        )
        check(
            1 <= self.max_piece_length <= 64,
            f"max_piece_length must be in [1, 64], got {self.max_piece_length}",
        )
        check(
            self.seed_sentencepiece_size >= self.vocab_size,
            f"seed_sentencepiece_size must be >= vocab_size ({self.vocab_size}), "
            f"got {self.seed_sentencepiece_size}",
        )
        check(
            0 <= self.max_byte_fallback <= 1,
            f"max_byte_fallback must be in [0, 1], got {self.max_byte_fallback}",
        )
