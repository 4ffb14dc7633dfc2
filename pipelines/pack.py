"""Tokenise, pack and place: the transforms of the shard job (pipelines/shard.py).

Packing follows the official DeBERTa data preparation (one token stream cut into 510-token lines,
each wrapped as [CLS] ... [SEP]) with two changes: documents are separated by [SEP] inside the
stream, and a sequence never starts with such a separator. Each packing bucket holds documents of
ONE language, so sequences never mix languages (XLM-R and mT5 also train on monolingual streams);
per-language token counts are then exact. The tail of a bucket shorter than a sequence is dropped
and counted.

Determinism: a drawn document's bucket and its place in the bucket's stream come from a hash of
(seed, lang, doc id, copy); a packed sequence's place in the output comes from a keyed Feistel
permutation of its global index. Neither depends on bundles or workers, so the bytes do not either.
"""

from __future__ import annotations

import array
import hashlib
import json
import sys
from collections.abc import Sequence

import apache_beam as beam
import numpy as np

from mdeberta import io
from mdeberta.shards import NUMPY_DTYPE, shard_name, write_shard
from pipelines.options import freeze_worker_heap
from pipelines.sampling import copies

_M64 = (1 << 64) - 1
# array.array turns a list of ints into bytes ~1.6x faster than numpy (where it is little-endian).
_ARRAY_U32 = array.array("I").itemsize == 4 and sys.byteorder == "little"

# helpers


def doc_key(seed: int, lang: str, doc_id: str, copy: int) -> int:
    """64-bit sort key of one drawn copy of a document; also picks its packing bucket."""
    data = f"{seed}\x00{lang}\x00{doc_id}\x00{copy}".encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _ids_bytes(ids: list[int]) -> bytes:
    if _ARRAY_U32:
        return array.array("I", ids).tobytes()
    return np.asarray(ids, dtype=NUMPY_DTYPE).tobytes()


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
    docs: Sequence[np.ndarray], seq_len: int, cls_id: int, sep_id: int
) -> tuple[np.ndarray, int]:
    """Rows [n, seq_len] = [CLS] stream[...] [SEP] of docs joined by [SEP]; the tail dropped."""
    starts, dropped = sequence_starts([len(d) for d in docs], seq_len)
    separator = np.array([sep_id], dtype=NUMPY_DTYPE)
    parts = [part for doc in docs for part in (separator, doc)][1:]
    stream = np.concatenate(parts) if parts else np.empty(0, NUMPY_DTYPE)
    rows = np.empty((len(starts), seq_len), dtype=NUMPY_DTYPE)
    rows[:, 0], rows[:, -1] = cls_id, sep_id
    for i, start in enumerate(starts):
        rows[i, 1:-1] = stream[start : start + seq_len - 2]
    return rows, dropped


def read_clean_docs(lang_url: tuple[str, str]):
    """Documents {"id", "lang", "text"} of one clean-corpus part file; a line that is no JSON or
    holds another language raises, naming the file and the line."""
    lang, url = lang_url
    number = 0
    # Binary lines, parsed ~1 MB at a time as one JSON array: json.loads has a fixed cost per
    # call (encoding detection, decoding) that was a tenth of this job's overhead per line.
    with io.open_file(url, "rb") as f:
        while lines := f.readlines(_JSON_CHUNK):
            try:
                docs = json.loads(b"[" + b",".join(lines) + b"]")
            except ValueError:
                docs = None
            if docs is None or len(docs) != len(lines):  # no JSON, or a line of two values
                docs = [_parse_line(url, number + i, line) for i, line in enumerate(lines, 1)]
            for doc in docs:
                number += 1
                if not isinstance(doc, dict) or doc.get("lang") != lang:
                    found = doc.get("lang") if isinstance(doc, dict) else doc
                    raise ValueError(
                        f"{url}:{number}: document of language {found!r}, "
                        f"expected {lang!r} (its directory)"
                    )
                yield doc


_JSON_CHUNK = 1 << 20


def _parse_line(url: str, number: int, line: bytes):
    """One line, for the error message of a chunk that did not parse as a whole."""
    try:
        return json.loads(line)
    except ValueError as e:
        raise ValueError(f"{url}:{number}: not a JSON document ({e})") from None


# Beam


class SampleTokenizeFn(beam.DoFn):
    """A part file -> ((lang, bucket), [(key, uint32 ids as bytes), ...]) per batch and bucket,
    and on the "lengths" output ((lang, bucket), [(key, tokens), ...]).

    Reads the file's documents, draws each `copies(passes[lang], seed, lang, id)` times (the
    shared sampler of pipelines/sampling.py), encodes the drawn ones in batches with one
    SentencePiece call and emits them grouped by packing bucket. Doing the three steps in one
    DoFn keeps Beam's per-element cost off the per-document path (about 2x faster than separate
    ApplySampling / BatchElements / ParDo steps on 2 cores). The lengths let the rows of every
    bucket be counted before any is packed (count_rows), so packing can place them at once.
    """

    def __init__(self, spm_url: str, seed: int, passes: dict, buckets: dict, batch: int):
        self._spm_url, self._seed, self._passes = spm_url, seed, passes
        self._buckets, self._batch = buckets, batch

    def setup(self):
        import sentencepiece as spm  # once per worker process

        with io.open_file(self._spm_url, "rb", compression=None) as f:
            self._sp = spm.SentencePieceProcessor(model_proto=f.read())
        freeze_worker_heap()

    def process(self, lang_url):
        lang = lang_url[0]
        passes, seen, drawn, batch = self._passes[lang], 0, 0, []
        for doc in read_clean_docs(lang_url):
            n = copies(passes, self._seed, lang, doc["id"])
            seen, drawn = seen + 1, drawn + n
            if n:
                batch.append((doc["id"], doc["text"], n))
            if len(batch) == self._batch:
                yield from self._encode(lang, batch)
                batch = []
        if batch:
            yield from self._encode(lang, batch)
        beam.metrics.Metrics.counter("sampling", f"seen/{lang}").inc(seen)
        beam.metrics.Metrics.counter("sampling", f"drawn/{lang}").inc(drawn)

    def _encode(self, lang: str, batch: list):
        encoded = self._sp.encode([text for _, text, _ in batch], out_type=int, num_threads=1)
        groups: dict[int, list] = {}
        for (doc_id, _, n), ids in zip(batch, encoded, strict=True):
            data = _ids_bytes(ids)
            for copy in range(n):
                key = doc_key(self._seed, lang, doc_id, copy)
                groups.setdefault(key % self._buckets[lang], []).append((key, data))
        for bucket in sorted(groups):
            docs = groups[bucket]
            yield (lang, bucket), docs
            lengths = [(key, len(data) // NUMPY_DTYPE.itemsize) for key, data in docs]
            yield beam.pvalue.TaggedOutput("lengths", ((lang, bucket), lengths))


def count_rows(element, seq_len: int) -> tuple[tuple, int]:
    """((lang, bucket), lists of (key, tokens)) -> ((lang, bucket), rows pack_documents makes)."""
    bucket, values = element
    lengths = [n for _, n in sorted(item for items in values for item in items)]
    return bucket, len(sequence_starts(lengths, seq_len)[0])


class PackFn(beam.DoFn):
    """A bucket's docs, in key order, packed into rows and placed at once: (shard, (slots, rows))
    per shard that the seeded global permutation sends them to; stats on the "stats" output.

    A row's global index is its bucket's offset in (lang, bucket) order (from `counts`, every
    bucket's rows, known before packing) plus its index in the bucket.
    """

    def __init__(self, seq_len: int, cls_id: int, sep_id: int, seed: int, per_shard: int):
        self._seq_len, self._cls, self._sep = seq_len, cls_id, sep_id
        self._seed, self._per_shard = seed, per_shard

    def process(self, element, counts):
        bucket, values = element
        drawn = sorted(item for items in values for item in items)  # key order: seeded, stable
        docs = [np.frombuffer(b, dtype=NUMPY_DTYPE) for _, b in drawn]
        rows, dropped = pack_documents(docs, self._seq_len, self._cls, self._sep)
        if len(rows) != counts[bucket]:
            raise RuntimeError(f"bucket {bucket}: {len(rows)} rows, counted {counts[bucket]}")
        stats = {
            "documents": len(docs),
            "tokens": sum(len(d) for d in docs),
            "sequences": len(rows),
            "dropped_tokens": int(dropped),
        }
        yield beam.pvalue.TaggedOutput("stats", (bucket[0], stats))
        if not len(rows):
            return
        order = sorted(counts)  # buckets in (lang, bucket) order define global indices
        offset = sum(counts[b] for b in order[: order.index(bucket)])
        total = sum(counts.values())
        places = permute_index(np.arange(offset, offset + len(rows)), total, self._seed)
        shards, slots = np.divmod(places, self._per_shard)
        for shard in np.unique(shards):
            sel = shards == shard
            yield int(shard), (slots[sel], rows[sel])


class WriteShardFn(beam.DoFn):
    """All (slots, rows) of one shard -> the shard file; yields its manifest entry."""

    def __init__(self, output: str):
        self._output = output

    def process(self, element):
        shard, parts = element
        parts = list(parts)
        slots = np.concatenate([s for s, _ in parts])
        rows = np.concatenate([r for _, r in parts])
        order = np.argsort(slots, kind="stable")
        if not np.array_equal(slots[order], np.arange(len(slots))):
            raise RuntimeError(f"shard {shard}: slots are not 0..{len(slots) - 1} (a bug)")
        yield write_shard(io.join(self._output, shard_name(shard)), rows[order])
