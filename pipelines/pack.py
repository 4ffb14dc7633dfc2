"""Tokenise, pack and place: the transforms of the shard job (pipelines/shard.py).

Packing follows the official DeBERTa data preparation (one token stream cut into 510-token lines,
each wrapped as [CLS] ... [SEP]) with two changes: documents are separated by [SEP] inside the
stream, and a sequence never starts with such a separator. A stream is one packing chunk: the
drawn copies of a run of documents of ONE clean-corpus part file, so sequences never mix languages
(XLM-R and mT5 also train on monolingual streams) and per-language token counts are exact. The
tail of a chunk shorter than a sequence is dropped and counted.

Determinism: a chunk is a run of a part file's documents in file order, closed at a character
count; a drawn copy's place in its chunk's stream comes from a hash of (seed, lang, doc id, copy);
a packed sequence's place in the output comes from a keyed Feistel permutation of its global
index. None depends on bundles or workers, so the bytes do not either.
"""

from __future__ import annotations

import array
import hashlib
import sys
from collections.abc import Sequence

import apache_beam as beam
import numpy as np

from mdeberta import io
from mdeberta.clean_corpus import read_part
from mdeberta.pipelines import scratch
from mdeberta.pipelines.options import freeze_worker_heap
from mdeberta.pipelines.sampling import copies
from mdeberta.shards import NUMPY_DTYPE, shard_name, write_shard

_M64 = (1 << 64) - 1
# A shard is gathered and written 8 MiB of rows at a time (WriteShardFn).
BLOCK_BYTES = 8 << 20
# array.array turns a list of ints into uint32 ~1.6x faster than numpy (where it is little-endian).
_ARRAY_U32 = array.array("I").itemsize == 4 and sys.byteorder == "little"

# helpers


def doc_key(seed: int, lang: str, doc_id: str, copy: int) -> int:
    """64-bit sort key of one drawn copy of a document: its place in its chunk's stream."""
    data = f"{seed}\x00{lang}\x00{doc_id}\x00{copy}".encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _ids_array(ids: list[int]):
    """Token ids as a little-endian uint32 buffer (len() counts ids)."""
    if _ARRAY_U32:
        return array.array("I", ids)
    return np.asarray(ids, dtype=NUMPY_DTYPE)


def rows_per_block(seq_len: int) -> int:
    return max(1, BLOCK_BYTES // (seq_len * NUMPY_DTYPE.itemsize))


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fast bijective hash of uint64 values."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def permute_index(x: np.ndarray, n: int, seed: int, rounds: int = 4) -> np.ndarray:
    """A seeded bijection of [0, n) evaluated pointwise: a Feistel network plus cycle walking.

    The network permutes [0, 2^bits) with bits even and 2^bits >= n; values that land >= n are
    sent through again until they fall inside, which keeps the map a bijection of [0, n).
    """
    bits = max(2, int(n - 1).bit_length())
    bits += bits % 2
    half = np.uint64(bits // 2)
    mask = np.uint64((1 << (bits // 2)) - 1)
    keys = [
        int(_mix64(np.array([(seed * 1_000_003 + r) & _M64], np.uint64))[0]) for r in range(rounds)
    ]

    def feistel(v: np.ndarray) -> np.ndarray:
        left, right = v >> half, v & mask
        for key in keys:
            left, right = right, left ^ (_mix64(right ^ np.uint64(key)) & mask)
        return (left << half) | right

    out = feistel(np.asarray(x, dtype=np.uint64))
    walking = out >= n
    while walking.any():
        out[walking] = feistel(out[walking])
        walking = out >= n
    return out.astype(np.int64)


def sequence_starts(lengths: Sequence[int], seq_len: int) -> tuple[list[int], int]:
    """Stream positions where the rows start, for documents of these token lengths joined by
    [SEP] into one stream; and the tokens of the tail too short for a row (dropped)."""
    body = seq_len - 2
    ends = np.cumsum(np.asarray(lengths, dtype=np.int64) + 1)  # each followed by a separator
    stream_length = int(ends[-1]) - 1 if len(ends) else 0
    is_separator = np.zeros(stream_length + 1, dtype=bool)
    is_separator[ends[:-1] - 1] = True  # the separator inserted after each but the last
    starts, pos = [], 0
    while True:
        if is_separator[pos]:
            pos += 1  # no sequence starts with a document separator: it would carry no content
        if pos + body > stream_length:
            return starts, stream_length - pos
        starts.append(pos)
        pos += body


def pack_documents(
    docs: Sequence, seq_len: int, cls_id: int, sep_id: int
) -> tuple[np.ndarray, int]:
    """Rows [n, seq_len] = [CLS] stream[...] [SEP] of docs (little-endian uint32 buffers: numpy
    arrays or array.array) joined by [SEP]; the tail dropped."""
    starts, dropped = sequence_starts([len(d) for d in docs], seq_len)
    separator = np.array([sep_id], dtype=NUMPY_DTYPE).tobytes()
    stream = np.frombuffer(separator.join(docs), dtype=NUMPY_DTYPE)  # one copy, in C
    rows = np.empty((len(starts), seq_len), dtype=NUMPY_DTYPE)
    rows[:, 0], rows[:, -1] = cls_id, sep_id
    for i, start in enumerate(starts):
        rows[i, 1:-1] = stream[start : start + seq_len - 2]
    return rows, dropped


# Beam


Chunk = tuple[str, int, int]
"""(language, part index, chunk number in the part): one packing stream."""


def _chunk_url(output: str, kind: str, chunk: Chunk) -> str:
    lang, index, number = chunk
    return scratch.url(output, kind, lang, f"{index:05d}-{number:05d}.u32")


def rows_url(output: str, chunk: Chunk) -> str:
    """A chunk's rows as packed."""
    return _chunk_url(output, "rows", chunk)


def placed_url(output: str, chunk: Chunk) -> str:
    """A chunk's rows sorted by their place in the output."""
    return _chunk_url(output, "placed", chunk)


class TokenizePackFn(beam.DoFn):
    """A part file (lang, index, clean_corpus.Part) -> its packed rows, one chunk at a time,
    written to a scratch file per chunk = (lang, index, n); yields (chunk, rows), and on "stats"
    (lang, stats).

    Reads the file's documents (checking its sha256 on the way), draws each
    `copies(passes[lang], seed, lang, id)` times (the shared sampler of pipelines/sampling.py)
    and encodes the drawn ones in batches with one SentencePiece call. A chunk closes once its
    drawn copies hold `chunk_chars` characters; its copies are packed in doc_key order.
    Reading, sampling, encoding and packing in one DoFn keeps token ids out of Beam: only the
    row counts leave it.
    """

    def __init__(
        self,
        spm_url: str,
        seed: int,
        passes: dict,
        pack: tuple,
        chunk_chars: int,
        batch: int,
        output: str,
    ):
        self._spm_url, self._seed, self._passes = spm_url, seed, passes
        self._seq_len, self._cls, self._sep = pack
        self._chunk_chars, self._batch, self._output = chunk_chars, batch, output

    def setup(self):
        import sentencepiece as spm  # once per worker process

        with io.open_file(self._spm_url, "rb", compression=None) as f:
            self._sp = spm.SentencePieceProcessor(model_proto=f.read())
        freeze_worker_heap()

    def process(self, element):
        lang, index, part = element
        passes, seen, drawn, chunks = self._passes[lang], 0, 0, 0
        batch, docs, chars = [], [], 0  # to encode; encoded (key, ids); drawn chars of the chunk
        for doc in read_part(part):
            n = copies(passes, self._seed, lang, doc["id"])
            seen, drawn = seen + 1, drawn + n
            if not n:
                continue
            batch.append((doc["id"], doc["text"], n))
            chars += n * len(doc["text"])
            if len(batch) == self._batch or chars >= self._chunk_chars:
                docs += self._encode(lang, batch)
                batch = []
            if chars >= self._chunk_chars:
                yield from self._pack((lang, index, chunks), docs)
                docs, chars, chunks = [], 0, chunks + 1
        if batch or docs or not chunks:  # every part reports at least one chunk, maybe empty
            yield from self._pack((lang, index, chunks), docs + self._encode(lang, batch))
        beam.metrics.Metrics.counter("sampling", f"seen/{lang}").inc(seen)
        beam.metrics.Metrics.counter("sampling", f"drawn/{lang}").inc(drawn)

    def _encode(self, lang: str, batch: list) -> list:
        if not batch:
            return []
        encoded = self._sp.encode([text for _, text, _ in batch], out_type=int, num_threads=1)
        return [
            (doc_key(self._seed, lang, doc_id, copy), data)
            for (doc_id, _, n), ids in zip(batch, encoded, strict=True)
            for data in [_ids_array(ids)]
            for copy in range(n)
        ]

    def _pack(self, chunk: tuple, docs: list):
        docs.sort(key=lambda item: item[0])  # key order: seeded, stable
        rows, dropped = pack_documents([d for _, d in docs], self._seq_len, self._cls, self._sep)
        stats = {
            "chunks": 1,
            "documents": len(docs),
            "tokens": sum(len(d) for _, d in docs),
            "sequences": len(rows),
            "dropped_tokens": int(dropped),
        }
        if len(rows):
            scratch.write(rows_url(self._output, chunk), rows.tobytes())
        yield beam.pvalue.TaggedOutput("stats", (chunk[0], stats))
        yield chunk, len(rows)


class PlaceFn(beam.DoFn):
    """(chunk, rows) -> the chunk's rows sorted by their place in the output, written to a scratch
    file; yields (task, (chunk, first row in that file, slots)) per writing task (per_task
    consecutive shards) they go to, slots (the rows' places among the task's) as
    int64 bytes: 8 bytes per row of seq_len * 4 travel through the shuffle, the rows do not.

    A row's place comes from a seeded global permutation of its global index: its chunk's offset
    in chunk order (from `counts`: every chunk's rows, known once all are packed) plus its index
    in the chunk. Sorted by place, the rows of one shard are one contiguous run of the file, so
    a shard's writer makes one ranged read per chunk that holds rows of it.
    """

    def __init__(self, seq_len: int, seed: int, per_shard: int, output: str, per_task: int = 1):
        self._seq_len, self._seed, self._per_shard = seq_len, seed, per_shard
        self._output, self._per_task = output, per_task
        self._offsets: tuple[dict, int] | None = None  # ({chunk: first global index}, rows)

    def process(self, element, counts):
        chunk, n = element
        if not n:
            return
        data = scratch.read(rows_url(self._output, chunk))
        rows = np.frombuffer(data, dtype=NUMPY_DTYPE).reshape(-1, self._seq_len)
        if len(rows) != counts[chunk]:
            raise RuntimeError(f"chunk {chunk}: {len(rows)} rows in its file, {n} counted")
        offsets, total = self._chunk_offsets(counts)
        places = permute_index(np.arange(len(rows)) + offsets[chunk], total, self._seed)
        order = np.argsort(places)  # places are distinct: shard, then slot
        scratch.write(placed_url(self._output, chunk), rows[order].tobytes())
        # a writing task's shards are consecutive: its rows are one run of this file too
        shards, slots = np.divmod(places[order], self._per_shard * self._per_task)
        bounds = np.flatnonzero(np.diff(shards)) + 1
        for first, run in zip([0, *bounds.tolist()], np.split(slots, bounds), strict=True):
            yield int(shards[first]), (chunk, first, run.astype("<i8").tobytes())

    def _chunk_offsets(self, counts: dict) -> tuple[dict, int]:
        """Each chunk's first global index, chunks in sorted order. Computed once: the side input
        is the same for every element (one global window)."""
        if self._offsets is None:
            offsets, total = {}, 0
            for chunk in sorted(counts):
                offsets[chunk], total = total, total + counts[chunk]
            self._offsets = (offsets, total)
        return self._offsets


class WriteShardFn(beam.DoFn):
    """(task, [(chunk, first row, slots)]) -> the task's shard files (per_task consecutive
    shards: more per task, fewer ranged reads and more memory); yields their manifest entries.

    Reads each chunk's run of rows with one ranged read; rows are gathered in slot order a block
    of BLOCK_BYTES at a time, written and hashed as they come: assembling the whole shard first
    cost a fresh 64 MiB array per shard, whose first touch (page faults) cost more than the copy.
    """

    def __init__(self, output: str, seq_len: int, per_shard: int, per_task: int = 1):
        self._output, self._seq_len = output, seq_len
        self._per_shard, self._per_task = per_shard, per_task

    def process(self, element):
        task, runs = element
        runs = sorted(runs, key=lambda run: run[0])  # chunk order: the same bytes on any worker
        slots = [np.frombuffer(s, dtype="<i8") for _, _, s in runs]
        where = np.concatenate(slots)
        order = np.argsort(where, kind="stable")  # slot i's row: order[i] of the runs' rows
        if not np.array_equal(where[order], np.arange(len(where))):
            raise RuntimeError(
                f"shards of task {task}: slots are not 0..{len(where) - 1} once each (a bug)"
            )
        row_bytes = self._seq_len * NUMPY_DTYPE.itemsize
        ranges = (
            (placed_url(self._output, chunk), first * row_bytes, len(s) * row_bytes)
            for (chunk, first, _), s in zip(runs, slots, strict=True)
        )
        rows = [
            np.frombuffer(data, dtype=NUMPY_DTYPE).reshape(-1, self._seq_len)
            for data in scratch.read_runs(ranges)
        ]
        for k, first in enumerate(range(0, len(order), self._per_shard)):
            blocks = _gather(
                rows, order[first : first + self._per_shard], rows_per_block(self._seq_len)
            )
            shard = task * self._per_task + k
            yield write_shard(io.join(self._output, shard_name(shard)), blocks)


def _gather(rows: list[np.ndarray], order: np.ndarray, step: int):
    """Blocks of `step` rows: row order[i] of the concatenation of `rows`, for i in order."""
    starts = np.cumsum([0] + [len(r) for r in rows])
    for first in range(0, len(order), step):
        wanted = order[first : first + step]
        part = np.searchsorted(starts, wanted, side="right") - 1
        block = np.empty((len(wanted), rows[0].shape[1]), dtype=NUMPY_DTYPE)
        by_part = np.argsort(part, kind="stable")
        for sel in np.split(by_part, np.flatnonzero(np.diff(part[by_part])) + 1):
            block[sel] = rows[part[sel[0]]][wanted[sel] - starts[part[sel[0]]]]
        yield block
