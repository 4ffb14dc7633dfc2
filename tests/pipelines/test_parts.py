"""Chunks and parts of the cleaning job, and its scratch files, without Beam."""

from __future__ import annotations

import pytest

from mdeberta.pipelines import scratch
from mdeberta.pipelines.clean import LOCAL_BATCH, REMOTE_BATCH, batch_limits
from mdeberta.pipelines.parts import PartLayout, chunked
from mdeberta.pipelines.read import RawDocument


def raw(lang: str, position: int, chars: int, source: int = 0) -> RawDocument:
    return RawDocument(lang, source, position, "x" * chars, chars, 1)


def test_a_chunk_closes_once_it_holds_shard_chars_per_language():
    docs = [
        raw("en", 0, 60),
        raw("de", 1, 10),
        raw("en", 2, 50),
        raw("en", 3, 5),
        raw("de", 4, 200),
    ]
    starts: dict[str, list[int]] = {}
    chunks = [record[-1] for record in chunked(docs, 100, starts)]
    # en: 60, 60+50 >= 100 closes after position 2, so 3 starts chunk 1; de never reaches 100
    # before its second document, which still joins chunk 0 (a chunk closes after, not before)
    assert chunks == [0, 0, 0, 1, 0]
    assert starts == {"en": [0, 3], "de": [1]}


def test_parts_are_chunks_in_file_order_and_drops_find_their_chunk():
    layout = PartLayout({("en", 2): [0, 7], ("en", 0): [0, 5, 9], ("de", 1): [3]})
    assert layout.parts == {"en": 5, "de": 1}
    assert [layout.part(c) for c in layout.chunks()] == [0, 0, 1, 2, 3, 4]
    assert list(layout.chunks())[0] == ("de", 1, 0)
    assert layout.part(("en", 2, 1)) == 4  # after en's file 0 (3 chunks) and file 2's chunk 0
    # a drop's ref (id, file, position) names its chunk by the chunks' first positions
    assert layout.chunk_of("en", ("id", 0, 4)) == ("en", 0, 0)
    assert layout.chunk_of("en", ("id", 0, 5)) == ("en", 0, 1)
    assert layout.chunk_of("en", ("id", 0, 99)) == ("en", 0, 2)
    assert layout.chunk_of("en", ("id", 2, 7)) == ("en", 2, 1)


def test_scratch_runs_are_read_back_by_range(tmp_path):
    out = str(tmp_path)
    where = scratch.url(out, "keys", "00000-0000000.bin")
    index = scratch.write_runs(where, {("de", 1): b"bb", ("de", 0): b"a", ("en", 0): b""})
    assert index == [(("de", 0), 0, 1), (("de", 1), 1, 2), (("en", 0), 3, 0)]
    runs = [(where, start, length) for _, start, length in index]
    assert list(scratch.read_runs(runs)) == [b"a", b"bb", b""]
    with pytest.raises(RuntimeError, match="truncated"):
        scratch.read(where, 2, 5)
    scratch.clear(out)
    assert not (tmp_path / scratch.JOB_DIR).exists()
    scratch.clear(out)  # nothing to clear is fine


def test_batches_are_small_locally_and_large_on_a_remote_runner():
    assert batch_limits([]) == LOCAL_BATCH
    assert batch_limits(["--runner", "FnApiRunner"]) == LOCAL_BATCH
    assert batch_limits(["--runner=DataflowRunner"]) == REMOTE_BATCH
    assert LOCAL_BATCH[1] < REMOTE_BATCH[1]
