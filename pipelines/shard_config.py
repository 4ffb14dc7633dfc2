"""ShardConfig: every setting of `mdeberta shard`, recorded whole in the shards' manifest.

Kept apart from the Beam job (pipelines/shard.py) so the command line can build its options from it
without importing Beam.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdeberta.config import check
from mdeberta.shards import DEFAULT_SEQUENCES_PER_SHARD


@dataclass
class ShardConfig:
    corpus: str = ""
    """Clean corpus directory (mdeberta clean): the part files its manifest lists, stats.json."""
    vocab: str = ""
    """Vocabulary directory (mdeberta build-vocab): spm.model and its manifest."""
    output: str = ""
    """Output directory for the token shards (local path or fsspec URL)."""
    seq_len: int = 512
    """Token ids per sequence, [CLS] and [SEP] included."""
    alpha: float = 0.3
    """Language sampling exponent: q_i ∝ p_i^alpha, p_i from the clean stats' chars_out."""
    max_passes: float = 10.0
    """Most times a language's text may be repeated; capped languages are reported."""
    target_chars: int | None = None
    """Characters of text to draw in total; None draws as many as the corpus holds."""
    languages: str | None = None
    """Comma-separated language codes to use; None uses every language of the corpus."""
    seed: int = 0
    """Seed of the sampling draws, the packing order and the write-time shuffle."""
    sequences_per_shard: int = DEFAULT_SEQUENCES_PER_SHARD
    """Sequences per shard file (the last one holds the rest); 32768 x 512 ids = 64 MiB."""
    chunk_chars: int = 50_000_000
    """Characters of drawn text per packing chunk (a run of one part file; bounds worker memory)."""
    encode_batch: int = 256
    """Most documents per SentencePiece encode(list) call."""
    workers: int = 1
    """Local worker processes (FnApiRunner multi_processing when > 1); ignored by other runners."""
    overwrite: bool = False
    """Replace an existing complete output (one with a manifest)."""
    max_byte_fallback: float = 0.05
    """Most byte-fallback pieces among a language's ids (on its first 1000 paragraphs) before the
    vocabulary is said not to fit that language (a warning, or with strict an error)."""
    strict: bool = False
    """Refuse a vocabulary that does not fit the corpus (a corpus language it was not trained on,
    or byte-fallback above max_byte_fallback) instead of warning."""

    def __post_init__(self):
        for name in ("corpus", "vocab", "output"):
            check(bool(getattr(self, name)), f"{name} is required (a directory or URL)")
        check(self.seq_len >= 3, f"seq_len must be >= 3 ([CLS] id [SEP]), got {self.seq_len}")
        check(0 < self.alpha <= 1, f"alpha must be in (0, 1], got {self.alpha}")
        check(self.max_passes > 0, f"max_passes must be > 0, got {self.max_passes}")
        check(
            self.target_chars is None or self.target_chars > 0,
            f"target_chars must be > 0 or None, got {self.target_chars}",
        )
        check(self.sequences_per_shard >= 1, "sequences_per_shard must be >= 1")
        check(self.chunk_chars >= 1, f"chunk_chars must be >= 1, got {self.chunk_chars}")
        check(self.encode_batch >= 1, f"encode_batch must be >= 1, got {self.encode_batch}")
        check(self.workers >= 1, f"workers must be >= 1, got {self.workers}")
        check(
            0 <= self.max_byte_fallback <= 1,
            f"max_byte_fallback must be in [0, 1], got {self.max_byte_fallback}",
        )
