"""Exact deduplication within each language: whole documents and paragraphs, as a Beam join.

Keys are cc_net's paragraph hashes (`dedup_hash`) and, for whole documents, a hash of those
(`content_hash`), both scoped by language. A GroupByKey gathers every occurrence of a key;
the occurrence with the smallest (document ref, paragraph index) survives, where ref =
(id, source file, position). That rule needs no global state, so it gives the same survivors on 1
worker or 1000. It is also consistent: the document that survives a whole-document group is the
smallest ref, so it also owns every paragraph it shares with its duplicates.

A paragraph found in `boilerplate_min_docs` documents or more is no content worth one copy:
cookie notices, share buttons, signatures. It is dropped from all of them as `boilerplate`, the
language-agnostic way to catch boilerplate written in words.

Only the losers travel further, as drops (ref, paragraph index or WHOLE, reason), to be applied
where each output part is written (`apply_drops`). In the cleaning job, keys travel in packed
lists per hash bucket (`pack_keys`, `bucket_drops`), and only keys seen more than once become
Python tuples again; in one process, `drops_in_memory` does the same.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import numpy as np

from mdeberta.pipelines.accounting import Counts
from mdeberta.pipelines.read import pack, unpack
from mdeberta.pipelines.rules import RuleContext, too_short

DOCUMENT, PARAGRAPH = 0, 1
WHOLE = -1
"""Paragraph index of a drop that removes the whole document."""
DUPLICATE, BOILERPLATE = "duplicate", "boilerplate"

Ref = tuple[str, int, int]
Occurrence = tuple[Ref, int]
Drop = tuple[Ref, int, str]


class Document(NamedTuple):
    """A document that passed the rules, ready for deduplication."""

    ref: Ref
    """(id, source, position): unique; the smallest of a group survives (any worker count)."""
    lang: str
    paragraphs: tuple[str, ...]
    hashes: tuple[int, ...]
    """dedup_hash of each paragraph."""

    @property
    def id(self) -> str:
        return self.ref[0]


# hashing

# cc_net's dedup normal form (facebookresearch/cc_net, text_normalizer.normalize_for_dedup):
# lower case, every digit -> 0, a fixed set of (mostly CJK and typographic) punctuation and the
# C0/C1 controls removed. Accents are kept.
_CCNET_PUNCT = "，。、„”“«»１」「《》´∶：？！（）；–—．～’…━〈〉【】％►"
_CCNET_STRIP = re.compile(
    "[" + re.escape(_CCNET_PUNCT) + "".join(map(chr, [*range(32), *range(127, 160)])) + "]"
)
_DIGIT = re.compile(r"\d")


def normalize_for_dedup(text: str) -> str:
    """cc_net's paragraph normal form for exact deduplication."""
    text = text.strip().lower()
    return _CCNET_STRIP.sub("", _DIGIT.sub("0", text))


def dedup_hash(text: str) -> int:
    """cc_net's paragraph hash: the first 8 bytes of SHA-1 of the normal form, as an integer."""
    digest = hashlib.sha1(normalize_for_dedup(text).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def content_hash(paragraph_hashes: Sequence[int]) -> int:
    """Whole-document dedup key: a hash of the document's paragraph hashes, in order."""
    data = b"".join(h.to_bytes(8, "little") for h in paragraph_hashes)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


# the join


def dedup_keys(doc: Document, *, paragraphs: bool = True, documents: bool = True) -> Iterator:
    """((lang, kind, hash), (ref, index)) for the document and each of its paragraphs."""
    if documents:
        yield (doc.lang, DOCUMENT, content_hash(doc.hashes)), (doc.ref, WHOLE)
    if paragraphs:
        for index, h in enumerate(doc.hashes):
            yield (doc.lang, PARAGRAPH, h), (doc.ref, index)


def losers(occurrences: Iterable[Occurrence]) -> Iterator[Occurrence]:
    """Every occurrence but the smallest; iterates twice (Beam's grouped values allow it)."""
    survivor = min(occurrences)
    return (o for o in occurrences if o != survivor)


def in_many_documents(occurrences: Iterable[Occurrence], min_docs: int) -> bool:
    """Whether the occurrences span at least `min_docs` documents (stops counting there)."""
    refs: set[Ref] = set()
    for ref, _ in occurrences:
        refs.add(ref)
        if len(refs) >= min_docs:
            return True
    return False


def group_drops(key: tuple, occurrences: Iterable[Occurrence], boilerplate_min_docs: int = 0):
    """Drops of one key's group: all of a widespread paragraph, else all but the survivor."""
    if key[1] == PARAGRAPH and boilerplate_min_docs > 1:
        if in_many_documents(occurrences, boilerplate_min_docs):
            return ((ref, index, BOILERPLATE) for ref, index in occurrences)
    return ((ref, index, DUPLICATE) for ref, index in losers(occurrences))


def apply_drops(
    docs: Iterable[Document], drops: Iterable[Drop], ctx: RuleContext, counts: Counts
) -> Iterator[tuple[str, str, str]]:
    """(id, lang, text) of the survivors in the order given, streaming; removals (and, once the
    iterator is exhausted, everything kept) counted in `counts`.

    A document left with no paragraph is removed as boilerplate if that is all it lost, else as
    duplicate_paragraphs; one left shorter than min_doc_chars as too_short (cc_net also applies
    its length bound after deduplication).
    """
    dropped: dict[Ref, dict[int, str]] = {}
    for ref, index, reason in drops:
        dropped.setdefault(ref, {})[index] = reason
    for doc in docs:
        lost = dropped.get(doc.ref, {})
        if WHOLE in lost:
            counts.remove("duplicate_doc", len(doc.paragraphs))
            continue
        kept = [p for i, p in enumerate(doc.paragraphs) if i not in lost]
        for reason in lost.values():
            counts.paragraphs_removed[_paragraph_reason(reason)] += 1
        if not kept:
            only_boilerplate = set(lost.values()) == {BOILERPLATE}
            counts.remove("boilerplate" if only_boilerplate else "duplicate_paragraphs", 0)
            continue
        if lost and too_short(kept, ctx):
            counts.remove("too_short", len(kept))
            continue
        text = "\n".join(kept)
        counts.docs_out += 1
        counts.paragraphs_out += len(kept)
        counts.chars_out += len(text)
        yield doc.id, doc.lang, text


def _paragraph_reason(reason: str) -> str:
    return "duplicate_paragraph" if reason == DUPLICATE else reason


def drops_of(entries: Iterable[tuple[tuple, Occurrence]], boilerplate_min_docs: int = 0) -> list:
    """All drops among (key, occurrence) entries, grouped here in memory by key."""
    groups: dict[tuple, list[Occurrence]] = {}
    for key, occurrence in entries:
        groups.setdefault(key, []).append(occurrence)
    return [
        drop
        for key, group in groups.items()
        if len(group) > 1
        for drop in group_drops(key, group, boilerplate_min_docs)
    ]


def drops_in_memory(docs: Sequence[Document], *, boilerplate_min_docs: int = 0, **which) -> list:
    """The same drops as the cleaning job's buckets, in one process (the benchmark's plain loop)."""
    entries = (entry for doc in docs for entry in dedup_keys(doc, **which))
    return drops_of(entries, boilerplate_min_docs)


def bucket_of(key: tuple, buckets: int) -> int:
    """Dedup bucket of a (lang, kind, hash) key: a group of keys small enough for memory."""
    return key[2] % buckets


def pack_keys(entries: Iterable[tuple[tuple, Occurrence]]) -> bytes:
    """A list of dedup_keys entries of one language as bytes: refs once, hashes as arrays.

    (refs, document hashes, their ref numbers, paragraph hashes, their ref numbers, paragraph
    indexes): a document key is the one with index WHOLE, so the kind needs no field. The refs
    are packed apart, so a bucket holds them compressed until it needs them (`_repeated_entries`).
    """
    refs: dict[Ref, int] = {}
    cols = (array("Q"), array("I"), array("Q"), array("I"), array("i"))
    for (_, kind, h), (ref, index) in entries:
        r = refs.setdefault(ref, len(refs))
        if kind == DOCUMENT:
            cols[0].append(h)
            cols[1].append(r)
        else:
            cols[2].append(h)
            cols[3].append(r)
            cols[4].append(index)
    return pack((pack(list(refs)), *(c.tobytes() for c in cols)))


def _repeated_entries(lang: str, packed: Iterable[bytes]) -> Iterator[tuple[tuple, Occurrence]]:
    """The (key, occurrence) entries of packed key lists whose key occurs more than once.

    A key seen once yields no drop, and most keys are seen once: numpy finds the repeated hashes
    over all the lists' hash arrays, then each list's refs are unpacked in turn, only their
    repeated entries become Python tuples, and the refs go before the next list's come: a
    bucket's memory is its hashes and its refs compressed, not its refs as Python objects.
    """
    parts = []  # (refs still packed, *hash columns as arrays) per list
    for data in packed:
        packed_refs, *columns = unpack(data)
        parts.append((packed_refs, *map(np.frombuffer, columns, _TYPES)))
    repeated = {}
    for kind, col in ((DOCUMENT, 1), (PARAGRAPH, 3)):
        hashes = np.sort(np.concatenate([part[col] for part in parts]))
        repeated[kind] = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
        del hashes
    for part in parts:
        found = {
            kind: np.flatnonzero(np.isin(part[col], repeated[kind])).tolist()
            for kind, col in ((DOCUMENT, 1), (PARAGRAPH, 3))
        }
        if not any(found.values()):
            continue
        refs = unpack(part[0])
        for j in found[DOCUMENT]:
            yield (lang, DOCUMENT, int(part[1][j])), (refs[part[2][j]], WHOLE)
        for j in found[PARAGRAPH]:
            yield (lang, PARAGRAPH, int(part[3][j])), (refs[part[4][j]], int(part[5][j]))


_TYPES = (np.uint64, np.uint32, np.uint64, np.uint32, np.int32)


def bucket_drops(lang: str, packed: Iterable[bytes], boilerplate_min_docs: int = 0) -> list:
    """The drops of one bucket of a language: packed key lists (`pack_keys`) in, grouped here in
    memory. Keys are spread over buckets by hash, so every occurrence of a key meets in one
    bucket; more buckets keep each one small."""
    return drops_of(_repeated_entries(lang, packed), boilerplate_min_docs)
