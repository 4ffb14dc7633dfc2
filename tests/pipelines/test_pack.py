"""The shard job's packing and placing (pipelines/pack.py), without Beam."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdeberta.pipelines import scratch
from mdeberta.pipelines.pack import (
    PlaceFn,
    WriteShardFn,
    pack_documents,
    permute_index,
    rows_url,
    sequence_starts,
)
from mdeberta.shards import shard_name
from tests.pipelines.test_shard import shard_rows


def test_pack_documents_separates_docs_and_never_starts_with_a_separator():
    docs = [np.arange(10, 15), np.arange(20, 23), np.arange(30, 38)]
    rows, dropped = pack_documents([d.astype(np.uint32) for d in docs], 7, 1, 2)
    # stream: 10..14 | 20 21 22 | 30..37, body 5 per row
    assert rows.tolist() == [
        [1, 10, 11, 12, 13, 14, 2],
        [1, 20, 21, 22, 2, 30, 2],  # the separator before 20 was skipped at the row start
        [1, 31, 32, 33, 34, 35, 2],
    ]
    assert dropped == 2
    rows, dropped = pack_documents([], 7, 1, 2)
    assert rows.shape == (0, 7) and dropped == 0


@settings(max_examples=200, deadline=None)
@given(lengths=st.lists(st.integers(0, 40), max_size=12), seq_len=st.integers(3, 20))
def test_packing_accounts_for_every_token(lengths, seq_len):
    docs = [np.full(n, 7 + i, dtype=np.uint32) for i, n in enumerate(lengths)]
    rows, dropped = pack_documents(docs, seq_len, 1, 2)
    assert len(rows) == len(sequence_starts(lengths, seq_len)[0])
    in_rows = int((rows[:, 1:-1] != 2).sum())  # document tokens (never 2) inside rows
    assert in_rows <= sum(lengths) <= in_rows + dropped  # the rest is in the dropped tail
    if all(lengths):  # no row starts with a separator (an empty document would be two)
        assert not (rows[:, 1] == 2).any()


@pytest.mark.parametrize("per_task", [1, 3])
def test_rows_are_placed_by_the_global_permutation_into_full_shards(tmp_path, per_task):
    """Place + Write without Beam: row g of the chunks in sorted order lands at permute_index(g),
    whether a writing task assembles one shard or several consecutive ones."""
    seq_len, per_shard, seed = 4, 8, 3
    sizes = {("de", 0, 0): 11, ("de", 0, 1): 0, ("en", 0, 0): 5, ("en", 1, 0): 13}
    chunks = {
        c: np.arange(n * seq_len, dtype=np.uint32).reshape(n, seq_len) + 1000 * i
        for i, (c, n) in enumerate(sorted(sizes.items()))
    }
    out_dir = str(tmp_path)
    for chunk, rows in chunks.items():  # as TokenizePackFn leaves them
        if len(rows):
            scratch.write(rows_url(out_dir, chunk), rows.tobytes())
    place, by_task = PlaceFn(seq_len, seed, per_shard, out_dir, per_task), {}
    for chunk in reversed(list(chunks)):  # any order
        for task, rows_run in place.process((chunk, sizes[chunk]), sizes):
            by_task.setdefault(task, []).append(rows_run)
    assert sorted(by_task) == list(range(-(-4 // per_task)))  # 29 rows: 4 shards
    # only slots travel: 8 bytes a row, never the rows themselves
    assert sum(len(s) for runs in by_task.values() for *_, s in runs) == 8 * sum(sizes.values())
    write = WriteShardFn(out_dir, seq_len, per_shard, per_task)
    entries = [e for t in sorted(by_task) for e in write.process((t, by_task[t]))]
    assert [e["name"] for e in entries] == [shard_name(i) for i in range(4)]
    assert [e["sequences"] for e in entries] == [8, 8, 8, 5]
    out = shard_rows(tmp_path, entries, seq_len)
    rows = np.concatenate(list(chunks.values()))
    assert np.array_equal(out[permute_index(np.arange(len(rows)), len(rows), seed)], rows)
    with pytest.raises(RuntimeError, match="slots are not"):
        list(write.process((0, by_task[0] + by_task[0][:1])))


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 3000), seed=st.integers(0, 2**31))
def test_permute_index_is_a_bijection(n, seed):
    out = permute_index(np.arange(n), n, seed)
    assert sorted(out.tolist()) == list(range(n))
    if n > 50:
        assert not np.array_equal(out, permute_index(np.arange(n), n, seed + 1))
