"""SentencePiece training: the trainer spec, the memory check, the size check, the run.

Memory (src/unigram_model_trainer.cc, MakeSeedSentencePieces): every sentence is copied into one
char32 array with a suffix array and its L, R, D arrays, int32 each: ~20 bytes per character, plus
the sentences themselves. Above INT32_MAX characters the trainer needs
train_extremely_large_corpus, which switches to int64 (~36 bytes per character).

The text term (TEXT_BYTES_PER_CHAR: the loaded sentences as UTF-8 strings, raw and normalized) is
calibrated on one measurement (docs/benchmarks.md: 9.6 M characters of 87 languages, peak
348 MiB, about 31 bytes per character in all), so the estimate errs on the side of refusing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mdeberta.vocab.config import VocabConfig
from mdeberta.vocab.tokenizer import SPECIAL_PIECES

log = logging.getLogger(__name__)

INT32_CHARS = 2**31 - 1
BYTES_PER_CHAR = 20  # char32 text + int32 SA, L, R, D
BYTES_PER_CHAR_LARGE = 36  # char32 text + int64 SA, L, R, D
TEXT_BYTES_PER_CHAR = 12  # loaded sentences, raw and normalized, UTF-8, and their bookkeeping
BYTES_PER_SENTENCE = 64  # std::string header and allocation per loaded sentence
NUM_BYTE_PIECES = 256
_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_TOO_LOW = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


class VocabSizeError(ValueError):
    """The vocabulary cannot be that large for this text; `largest` is the size that can be."""

    def __init__(self, requested: int, largest: int, exact: bool):
        self.requested, self.largest = requested, largest
        bound = "" if exact else "at most "
        super().__init__(
            f"vocab_size {requested:,} is too large for this text: SentencePiece can build "
            f"{bound}{largest:,} pieces from it. Use --vocab-size {largest} or less, or more text "
            "(--sentences, a larger corpus)."
        )


class VocabTooSmallError(ValueError):
    """The vocabulary cannot hold the characters that character_coverage requires."""

    def __init__(self, requested: int, needed: int, coverage: float):
        self.requested, self.needed = requested, needed
        super().__init__(
            f"vocab_size {requested:,} is too small for this text: at character_coverage "
            f"{coverage} it needs {needed:,} single-character and special pieces. Use "
            f"--vocab-size {needed} or more, or a lower character_coverage."
        )


class MemoryLimitError(MemoryError):
    """Training would need more RAM than the limit allows (and lowering was not allowed)."""


@dataclass(frozen=True)
class MemoryPlan:
    sentences: int
    """Sentences in the sample."""
    chars: int
    """Characters in the sample."""
    estimate_bytes: int
    """RAM the trainer needs for the whole sample."""
    limit_bytes: int
    """RAM it may use."""
    input_sentence_size: int
    """Sentences SentencePiece keeps (0 = all); set when the sample was lowered to fit."""
    extremely_large: bool
    """Whether train_extremely_large_corpus is needed."""


def trainer_spec(cfg: VocabConfig) -> dict:
    """SentencePieceTrainer arguments shared by build-vocab and the benchmark's direct run."""
    pad, cls, sep, unk = SPECIAL_PIECES
    return {
        "model_type": "unigram",
        "vocab_size": cfg.vocab_size,
        "character_coverage": cfg.character_coverage,
        "byte_fallback": cfg.byte_fallback,
        "split_digits": cfg.split_digits,
        "normalization_rule_name": cfg.normalization,
        "max_sentencepiece_length": cfg.max_piece_length,
        "max_sentence_length": cfg.max_sentence_bytes,
        "seed_sentencepiece_size": cfg.seed_sentencepiece_size,
        "num_threads": cfg.threads,
        "shuffle_input_sentence": True,
        "hard_vocab_limit": True,
        "pad_id": 0,
        "bos_id": 1,
        "eos_id": 2,
        "unk_id": 3,
        "pad_piece": pad,
        "bos_piece": cls,
        "eos_piece": sep,
        "unk_piece": unk,
    }


# memory


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo, else total physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate_memory(chars: int, sentences: int) -> tuple[int, bool]:
    """(bytes, extremely_large) that SentencePiece needs to train on this many chars/sentences."""
    array = chars + sentences  # one separator per sentence in the suffix-array text
    large = array > INT32_CHARS
    per_char = BYTES_PER_CHAR_LARGE if large else BYTES_PER_CHAR
    return array * per_char + chars * TEXT_BYTES_PER_CHAR + sentences * BYTES_PER_SENTENCE, large


def plan_memory(cfg: VocabConfig, chars: int, sentences: int) -> MemoryPlan:
    """Check the sample against the memory limit; lower it (or refuse) when it does not fit."""
    limit = int(cfg.memory_limit_gb * 2**30) or int(0.9 * available_memory_bytes())
    estimate, large = estimate_memory(chars, sentences)
    keep = 0
    if estimate > limit:
        gb = f"{estimate / 2**30:.1f} GB for {chars:,} characters in {sentences:,} lines"
        if cfg.on_memory_exceeded == "error":
            raise MemoryLimitError(
                f"SentencePiece would need about {gb}, more than the {limit / 2**30:.1f} GB "
                "allowed: lower --sentences, raise memory_limit_gb, or use a bigger machine"
            )
        keep = max(1, int(sentences * limit / estimate * 0.95))
        kept_chars = int(chars * keep / sentences)
        estimate, large = estimate_memory(kept_chars, keep)
        log.warning(
            "SentencePiece would need about %s; training on a random %s of the %s lines "
            "(about %.1f GB). Lower --sentences to silence this.",
            gb,
            f"{keep:,}",
            f"{sentences:,}",
            estimate / 2**30,
        )
    return MemoryPlan(sentences, chars, estimate, limit, keep, large)


# vocabulary size


def _words(line: str) -> list[str]:
    return ["▁" + w for w in line.split()]


def feasible_vocab_bound(lines: Iterable[str], cfg: VocabConfig, stop_above: int) -> int | None:
    """An upper bound on the pieces SentencePiece can build from `lines`, or None if > stop_above.

    Pieces are special, byte and character pieces plus seed pieces: substrings of a word (up to
    max_piece_length characters) seen at least twice. Counting stops as soon as the bound passes
    `stop_above`, so a large corpus costs a few thousand lines.
    """
    fixed = len(SPECIAL_PIECES) + (NUM_BYTE_PIECES if cfg.byte_fallback else 0)
    chars: set[str] = set()
    seen: set[str] = set()
    repeated: set[str] = set()
    for line in lines:
        chars.update(line)
        for word in _words(line):
            for i in range(len(word)):
                for j in range(i + 2, min(len(word), i + cfg.max_piece_length) + 1):
                    piece = word[i:j]
                    if piece in seen:
                        repeated.add(piece)
                    else:
                        seen.add(piece)
        if fixed + len(chars) + len(repeated) > stop_above:
            return None
    return fixed + len(chars) + len(repeated)


def check_vocab_size(lines: Iterable[str], cfg: VocabConfig) -> None:
    """Fail early (before SentencePiece) when the text cannot give vocab_size pieces."""
    bound = feasible_vocab_bound(lines, cfg, stop_above=cfg.vocab_size)
    if bound is not None and bound < cfg.vocab_size:
        raise VocabSizeError(cfg.vocab_size, bound, exact=False)


# training


def train_spm(
    sentences: Iterator[str] | list[str],
    cfg: VocabConfig,
    memory: MemoryPlan,
) -> tuple[bytes, dict]:
    """Train on `sentences` (an iterator, or local text file paths); return (spm.model, spec)."""
    import io as _io

    import sentencepiece as spm

    spec = trainer_spec(cfg)
    spec["input_sentence_size"] = memory.input_sentence_size
    spec["train_extremely_large_corpus"] = memory.extremely_large
    spm.set_random_generator_seed(cfg.seed)
    model = _io.BytesIO()
    source = (
        {"input": ",".join(sentences)}
        if isinstance(sentences, list)
        else {"sentence_iterator": sentences}
    )
    try:
        spm.SentencePieceTrainer.train(**source, model_writer=model, minloglevel=1, **spec)
    except RuntimeError as err:
        raise _translate(err, cfg) from err
    return model.getvalue(), spec


def _translate(err: RuntimeError, cfg: VocabConfig) -> Exception:
    """SentencePiece's errors in our words, where we know them."""
    match = _TOO_HIGH.search(str(err))
    if match:
        return VocabSizeError(int(match.group(1)), int(match.group(2)), exact=True)
    match = _TOO_LOW.search(str(err))
    if match:
        return VocabTooSmallError(int(match.group(1)), int(match.group(2)), cfg.character_coverage)
    if "Input corpus too large" in str(err):
        return MemoryLimitError(f"{err}: the sample is too large for the int32 suffix array")
    return err
