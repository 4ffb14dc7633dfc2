"""Paragraphs of a clean corpus, without Beam: reading them, cutting long ones.

Shared by the vocabulary sample (pipelines.sample_vocab, the Beam job) and by the vocabulary
stage itself (its size check and report run in a process that never imports Beam).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mdeberta import io
from mdeberta.clean_corpus import Part, read_part

# sentence-final punctuation of the scripts in CC-100, followed by spaces (or not, for CJK)
_SENTENCE_END = re.compile(r"(?<=[.!?…;؟۔।॥။።։])\s+|(?<=[。！？])")
_SPACE = re.compile(r"\s+")
SPLIT_KINDS = ("sentence", "space", "char")


# cutting long paragraphs


def _utf8_prefix_end(text: str, start: int, max_bytes: int) -> int:
    """Largest end such that text[start:end] fits in max_bytes of UTF-8 (at least one char)."""
    end, used = start, 0
    while end < len(text):
        size = len(text[end].encode())
        if used + size > max_bytes:
            break
        used += size
        end += 1
    return max(end, start + 1)


def _last_cut(pattern: re.Pattern, text: str, start: int, end: int) -> int | None:
    """End of the last `pattern` match that cuts text[start:end] inside it, or None."""
    cut = None
    for m in pattern.finditer(text, start, end):
        if start < m.start():
            cut = m.start()
    return cut


def split_long(text: str, max_bytes: int) -> tuple[list[str], str | None]:
    """Cut `text` into lines of at most `max_bytes` UTF-8 bytes.

    Returns (lines, kind): kind is None when no cut was needed, else the coarsest cut that was
    needed anywhere: "sentence", "space" or "char" (SPLIT_KINDS order).
    """
    if len(text) * 4 <= max_bytes or len(text.encode()) <= max_bytes:
        return [text], None
    lines, worst, start = [], 0, 0
    while start < len(text):
        end = _utf8_prefix_end(text, start, max_bytes)
        if end < len(text):
            for level, pattern in enumerate((_SENTENCE_END, _SPACE)):
                cut = _last_cut(pattern, text, start, end + 1)
                if cut is not None:
                    end, worst = cut, max(worst, level)
                    break
            else:
                worst = 2
        piece = text[start:end].strip()
        if piece:
            lines.append(piece)
        start = end
    return lines, SPLIT_KINDS[worst]


# reading the clean corpus


def read_paragraphs(part: Part) -> Iterator[tuple[str, str, str]]:
    """(lang, key, paragraph) for every non-empty paragraph; key = "{doc id}:{index}"."""
    for doc in read_part(part):
        for i, paragraph in enumerate(doc["text"].split("\n")):
            if paragraph.strip():
                yield part.lang, f"{doc['id']}:{i}", paragraph


def sample_files(sample_dir: str) -> list[str]:
    """The text files of a vocabulary sample (pipelines.sample_vocab)."""
    return io.expand_inputs([io.join(sample_dir, "part-*.txt")])
