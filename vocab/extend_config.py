"""ExtendVocabConfig: every setting of `mdeberta extend-vocab`, recorded whole in the manifest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mdeberta.config import check
from mdeberta.vocab.config import VocabConfig


@dataclass
class ExtendVocabConfig:
    base: str = ""
    """Vocabulary to extend: a vocabulary directory of ours, or a Hugging Face model or tokenizer
    directory with a unigram spm.model (e.g. a download of microsoft/mdeberta-v3-base)."""
    corpus: str = ""
    """Clean corpus of the text to adapt to (any fsspec URL); the new pieces are learnt from it."""
    output: str = ""
    """Extended vocabulary directory to write (any fsspec URL)."""
    add: int = 0
    """Pieces to add: the N most probable pieces of a unigram model of the corpus that the base
    lacks. They take ids after the base's last id ([MASK]); every base id stays as it was."""
    languages: str | None = None
    """Comma-separated corpus codes to learn from; None = every language in the corpus stats."""
    check_corpus: str | None = None
    """A clean corpus of base languages (e.g. the one the base was built from): the report gives
    its pieces per word before and after, and the share of its lines whose segmentation changed."""
    candidates: int = 0
    """Pieces of the unigram model trained on the corpus, among which the new ones are chosen;
    0 = 4 x add, doubled while it yields fewer than `add` pieces the base lacks."""
    alpha: float = 0.3
    """Language sampling exponent, as build-vocab: q_i ∝ p_i^alpha over the corpus languages."""
    sentences: int = 1_000_000
    """Target number of paragraphs drawn for training (long ones are split into sentences)."""
    max_passes: float = 10.0
    """At most this many copies of a language's text in the sample."""
    seed: int = 12345
    """Seed of the paragraph sample and of SentencePiece's random generator."""
    character_coverage: float = 0.9999
    """Share of the corpus's characters that may become single-character pieces."""
    max_sentence_bytes: int = 8192
    """Longest training line in UTF-8 bytes; longer paragraphs are split (as build-vocab)."""
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
    """Keep the sampled training text in {output}/sample/."""
    report_paragraphs: int = 1000
    """Paragraphs per language, read from the start of each corpus, for report.json."""

    def __post_init__(self):
        check(self.add >= 0, f"add must be >= 1 (0 = not given), got {self.add}")
        check(
            self.candidates == 0 or self.candidates >= 16,
            f"candidates must be 0 (automatic) or >= 16, got {self.candidates}",
        )
        check(
            self.report_paragraphs >= 1,
            f"report_paragraphs must be >= 1, got {self.report_paragraphs}",
        )
        self.sample_settings(16)  # the sampling and trainer settings, checked where they live

    def sample_settings(self, vocab_size: int, **trainer) -> VocabConfig:
        """build-vocab's settings for the unigram model of the corpus (`trainer`: the base's
        trainer settings the pieces must follow, e.g. max_piece_length)."""
        return VocabConfig(
            corpus=self.corpus,
            output=self.output,
            languages=self.languages,
            vocab_size=vocab_size,
            alpha=self.alpha,
            sentences=self.sentences,
            max_passes=self.max_passes,
            seed=self.seed,
            character_coverage=self.character_coverage,
            max_sentence_bytes=self.max_sentence_bytes,
            seed_sentencepiece_size=max(1_000_000, vocab_size),
            num_threads=self.num_threads,
            memory_limit_gb=self.memory_limit_gb,
            on_memory_exceeded=self.on_memory_exceeded,
            workers=self.workers,
            keep_sample=self.keep_sample,
            **trainer,
        )
