"""ExtendVocabConfig: every setting of `mdeberta extend-vocab`, recorded whole in the manifest.

The sampling, trainer-resource and report settings are build-vocab's (vocab.config.SampleConfig):
the corpus is sampled and the candidates' unigram model trained as build-vocab does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mdeberta.config import check
from mdeberta.vocab.config import SampleConfig, VocabConfig


@dataclass
class ExtendVocabConfig(SampleConfig):
    corpus: str = ""
    """Clean corpus of the text to adapt to (any fsspec URL); the new pieces are learnt from it."""
    output: str = ""
    """Extended vocabulary directory to write (any fsspec URL)."""
    base: str = ""
    """Vocabulary to extend: a vocabulary directory of ours, or a Hugging Face model or tokenizer
    directory with a unigram spm.model (e.g. a download of microsoft/mdeberta-v3-base)."""
    add: int = 0
    """Pieces to add: the characters the base lacks, then the most probable pieces of a unigram
    model of the corpus that it lacks. They take ids after the base's last id ([MASK]); every base
    id stays as it was."""
    check_corpus: str | None = None
    """A clean corpus of base languages (e.g. the one the base was built from): the report gives
    its pieces per word before and after, and the share of its lines whose segmentation changed."""
    candidates: int = 0
    """Pieces of the unigram model trained on the corpus, among which the new ones are chosen;
    0 = 4 x add, doubled while it yields fewer than `add` pieces the base lacks."""

    def __post_init__(self):
        super().__post_init__()
        check(self.add >= 0, f"add must be >= 1 (0 = not given), got {self.add}")
        check(
            self.candidates == 0 or self.candidates >= 16,
            f"candidates must be 0 (automatic) or >= 16, got {self.candidates}",
        )
        check(
            self.report_paragraphs >= 1,
            f"report_paragraphs must be >= 1, got {self.report_paragraphs}",
        )

    def sample_settings(self, vocab_size: int, **trainer) -> VocabConfig:
        """build-vocab's settings for the unigram model of the corpus (`trainer`: the base's
        trainer settings the pieces must follow, e.g. max_piece_length)."""
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(SampleConfig)}
        return VocabConfig(
            **shared,
            vocab_size=vocab_size,
            seed_sentencepiece_size=max(VocabConfig.seed_sentencepiece_size, vocab_size),
            **trainer,
        )
