import shutil
import subprocess
import sys
import tempfile
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from mdeberta import io
from mdeberta.manifest import IncompleteArtifactError, ManifestError
from mdeberta.shard_reader import ShardDataset
from mdeberta.shards import (
    ShardFormatError,
    VocabMismatchError,
    verify_shards,
    vocab_info,
    write_shard,
    write_shards_manifest,
    write_token_shards,
)
from tests.tiny_vocab import write_tiny_vocab

SEQ_LEN = 8
VOCAB = {
    "sha256": "0" * 64,
    "url": "vocab",
    "vocab_size": 1000,
    "special_ids": {"pad": 0, "cls": 1, "sep": 2, "unk": 3, "mask": 999},
}


def numbered(n, seq_len=SEQ_LEN):
    """Sequences whose ids encode their write position i: [CLS, i, i+1, ..., SEP]."""
    for i in range(n):
        yield np.array([1, *range(i + 10, i + 10 + seq_len - 2), 2], dtype=np.uint32)


def index_of(sample):
    return int(sample[1]) - 10


def make(tmp, n=50, per_shard=7, vocab=VOCAB, **kw):
    out = str(tmp) if not isinstance(tmp, str) else tmp
    write_token_shards(
        out, numbered(n), seq_len=SEQ_LEN, vocab=vocab, sequences_per_shard=per_shard
    )
    return out


def take(iterator, n):
    return [next(iterator) for _ in range(n)]


def test_written_format_is_readable_without_our_code(tmp_path):
    m = write_token_shards(
        str(tmp_path),
        numbered(20),
        seq_len=SEQ_LEN,
        vocab=VOCAB,
        sequences_per_shard=8,
        extra={"languages": {"en": {"tokens": 1}}},
    )
    assert [s["sequences"] for s in m["shards"]] == [8, 8, 4]
    assert m["kind"] == "token-shards" and m["dtype"] == "uint32" and m["num_sequences"] == 20
    assert m["languages"] == {"en": {"tokens": 1}} and m["vocab"] == VOCAB
    rows = np.concatenate(
        [np.fromfile(tmp_path / s["name"], "<u4").reshape(-1, SEQ_LEN) for s in m["shards"]]
    )
    np.testing.assert_array_equal(rows, np.stack(list(numbered(20))))
    assert verify_shards(str(tmp_path))["num_sequences"] == 20


def test_writer_rejects_wrong_shapes(tmp_path):
    with pytest.raises(ValueError, match="sequence 1 has shape"):
        write_token_shards(
            str(tmp_path), [np.ones(SEQ_LEN), np.ones(3)], seq_len=SEQ_LEN, vocab=VOCAB
        )
    with pytest.raises(ValueError, match="no sequences"):
        write_token_shards(str(tmp_path), [], seq_len=SEQ_LEN, vocab=VOCAB)


def test_a_shard_written_in_blocks_is_the_shard_written_at_once(tmp_path):
    rows = np.arange(7 * SEQ_LEN, dtype=np.uint32).reshape(7, SEQ_LEN)
    whole = write_shard(str(tmp_path / "a.bin"), rows)
    blocks = write_shard(str(tmp_path / "b.bin"), (rows[i : i + 3] for i in range(0, 7, 3)))
    assert {**blocks, "name": "a.bin"} == whole and whole["sequences"] == 7
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()
    with pytest.raises(ValueError, match=r"c.bin: a shard is \[sequences, seq_len\] rows"):
        write_shard(str(tmp_path / "c.bin"), iter([rows, rows[:, :3]]))
    assert not (tmp_path / "c.bin").exists()  # nothing half-written under the final name


def test_one_epoch_is_a_permutation_and_epochs_differ(tmp_path):
    ds = ShardDataset(make(tmp_path), seed=3)
    assert ds.seq_len == SEQ_LEN and ds.num_samples == 50 and ds.vocab_size == 1000
    it = iter(ds)
    first, second = take(it, 50), take(it, 50)
    assert all(s.dtype == torch.int64 and s.shape == (SEQ_LEN,) for s in first)
    assert sorted(map(index_of, first)) == list(range(50)) == sorted(map(index_of, second))
    assert list(map(index_of, first)) != list(map(index_of, second))
    again = take(iter(ShardDataset(make(tmp_path), seed=3)), 50)
    assert list(map(index_of, again)) == list(map(index_of, first))
    other = take(iter(ShardDataset(make(tmp_path), seed=4)), 50)
    assert list(map(index_of, other)) != list(map(index_of, first))


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 40),
    per_shard=st.integers(1, 9),
    world=st.integers(1, 4),
    workers=st.integers(1, 3),
    batch=st.integers(1, 4),
    epoch=st.integers(0, 2),
)
def test_ranks_and_workers_see_every_sample_once_per_epoch(
    n, per_shard, world, workers, batch, epoch
):
    if n < world:
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = make(tmp, n=n, per_shard=per_shard)
        seen = Counter()
        for rank in range(world):
            ds = ShardDataset(url, seed=7, rank=rank, world_size=world, batch_size=batch)
            ds.set_position(epoch, 0)
            single = list(map(index_of, take(ds.stream(), ds.num_samples)))
            # DataLoader order: batch b comes from worker b % workers, in turn.
            streams = [ds.stream(w, workers) for w in range(workers)]
            merged = []
            while len(merged) < ds.num_samples:
                merged += map(index_of, take(streams[len(merged) // batch % workers], batch))
            assert merged[: ds.num_samples] == single
            seen.update(single)
        assert seen == Counter(range(n))


def test_resume_from_state_dict_at_the_exact_sample(tmp_path):
    url = make(tmp_path, n=23, per_shard=5)
    ds = ShardDataset(url, seed=1, rank=1, world_size=2)
    it = iter(ds)
    take(it, 30)  # beyond one epoch of this rank (11 samples)
    state = ds.state_dict()
    assert (state["epoch"], state["consumed"]) == divmod(30, 11) == ds.position_after(0)
    expected = list(map(index_of, take(it, 15)))
    resumed = ShardDataset(url, seed=1, rank=1, world_size=2)
    resumed.load_state_dict(state)
    assert list(map(index_of, take(iter(resumed), 15))) == expected
    resumed.set_position(*divmod(30, 11))
    assert list(map(index_of, take(iter(resumed), 15))) == expected


def test_resume_with_another_world_size_continues_the_global_order(tmp_path):
    url = make(tmp_path, n=24, per_shard=5)
    olds = [ShardDataset(url, seed=2, rank=r, world_size=3) for r in range(3)]
    done = {index_of(s) for ds in olds for s in take(iter(ds), 4)}
    state = olds[0].state_dict()
    rest = Counter()
    for rank in range(2):
        new = ShardDataset(url, seed=2, rank=rank, world_size=2)
        new.load_state_dict(state)
        rest.update(map(index_of, take(iter(new), new.num_samples - new.consumed)))
    assert set(rest) == set(range(24)) - done and max(rest.values()) == 1
    with pytest.raises(ValueError, match="seed"):
        ShardDataset(url, seed=9).load_state_dict(state)


def test_dataloader_with_workers_gives_the_batches_of_num_workers_0(tmp_path):
    url = make(tmp_path, n=45, per_shard=8)
    ds = ShardDataset(url, seed=5, batch_size=4)

    def batches(num_workers):
        ds.set_position(1, 6)  # main-process iteration (num_workers=0) advances the position
        loader = DataLoader(ds, batch_size=4, num_workers=num_workers)
        return [b for b, _ in zip(loader, range(14), strict=False)]

    plain, parallel = batches(0), batches(2)
    assert all(torch.equal(a, b) for a, b in zip(plain, parallel, strict=True))
    assert plain[0].shape == (4, SEQ_LEN) and plain[0].dtype == torch.int64


def test_remote_shards_stream_through_a_verified_cache(tmp_path):
    url = make(f"memory://shards-{tmp_path.name}", n=30, per_shard=7)
    local = make(tmp_path / "local", n=30, per_shard=7)
    cache = tmp_path / "cache"
    remote = take(iter(ShardDataset(url, seed=4, cache_dir=str(cache))), 30)
    want = take(iter(ShardDataset(local, seed=4)), 30)
    assert all(torch.equal(a, b) for a, b in zip(remote, want, strict=True))
    m = ShardDataset(url).manifest
    assert sorted(p.name for p in cache.glob("*.bin")) == sorted(
        f"{s['sha256']}.bin" for s in m["shards"]
    )
    # The cache is content-addressed: a second reader needs no remote shard any more.
    fs, path = io.url_to_fs(url)
    for s in m["shards"]:
        fs.rm(f"{path}/{s['name']}")
    again = take(iter(ShardDataset(url, seed=4, cache_dir=str(cache))), 30)
    assert all(torch.equal(a, b) for a, b in zip(again, want, strict=True))


def test_remote_checksum_mismatch_names_the_url(tmp_path):
    url = make(f"memory://bad-{tmp_path.name}", n=10, per_shard=10)
    fs, path = io.url_to_fs(url)
    data = bytearray(fs.cat_file(f"{path}/shard-00000.bin"))
    data[5] ^= 1
    fs.pipe_file(f"{path}/shard-00000.bin", bytes(data))
    ds = ShardDataset(url, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ShardFormatError, match=r"shard-00000\.bin: sha256"):
        next(iter(ds))
    assert not list((tmp_path / "cache").glob("*.bin"))


def test_truncated_shard_is_named(tmp_path):
    url = make(tmp_path, n=20, per_shard=10)
    shard = tmp_path / "shard-00001.bin"
    ds = ShardDataset(url)
    shard.write_bytes(shard.read_bytes()[:-5])  # after the reader checked the sizes
    with pytest.raises(ShardFormatError, match=r"shard-00001\.bin: .* truncated"):
        take(iter(ds), 20)
    with pytest.raises(ShardFormatError, match=r"shard-00001\.bin"):
        verify_shards(url)


def test_every_shard_size_is_checked_when_the_reader_opens(tmp_path):
    url = make(tmp_path, n=30, per_shard=10)
    shard = tmp_path / "shard-00002.bin"
    shard.write_bytes(shard.read_bytes()[:-4])
    with pytest.raises(ShardFormatError, match=r"shard-00002\.bin: .* truncated"):
        ShardDataset(url)
    shard.unlink()
    with pytest.raises(ShardFormatError, match=r"shard-00002\.bin: listed in .* but missing"):
        ShardDataset(url)


def test_verify_hashes_every_shard_before_any_is_read(tmp_path):
    url = make(tmp_path, n=30, per_shard=10)
    shard = tmp_path / "shard-00002.bin"
    data = bytearray(shard.read_bytes())
    data[7] ^= 0x10
    shard.write_bytes(bytes(data))
    ds = ShardDataset(url)  # same size: opening finds nothing
    with pytest.raises(ShardFormatError, match=r"shard-00002\.bin: sha256 .* corrupt"):
        ds.verify_all()


def test_a_cached_remote_shard_is_verified_by_hash_not_size(tmp_path):
    url = make(f"memory://cached-{tmp_path.name}", n=10, per_shard=10)
    cache = tmp_path / "cache"
    want = take(iter(ShardDataset(url, seed=4, cache_dir=str(cache))), 10)
    (cached,) = cache.glob("*.bin")
    data = bytearray(cached.read_bytes())
    data[9] ^= 0x01  # the same size, other bytes
    cached.write_bytes(bytes(data))
    again = take(iter(ShardDataset(url, seed=4, cache_dir=str(cache))), 10)
    assert all(torch.equal(a, b) for a, b in zip(again, want, strict=True))
    assert cached.read_bytes() != bytes(data)  # fetched again, verified


def test_checksum_mismatch_is_named(tmp_path):
    url = make(tmp_path, n=20, per_shard=10)
    shard = tmp_path / "shard-00000.bin"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ShardFormatError, match=r"shard-00000\.bin: sha256 .* corrupt"):
        take(iter(ShardDataset(url)), 20)
    # verify=False skips hashing (size still checked): the corrupt ids come through.
    assert len(take(iter(ShardDataset(url, verify=False)), 20)) == 20


def test_directory_without_manifest_is_an_incomplete_artifact(tmp_path):
    url = make(tmp_path / "shards", n=5)
    (tmp_path / "shards" / "manifest.json").unlink()
    with pytest.raises(IncompleteArtifactError, match="shards: no manifest.json"):
        ShardDataset(url)


def train_vocab(out_dir, text_lines, vocab_size=300):
    """A real tiny SentencePiece vocabulary dir in the project's layout (ids 0-3 special)."""
    write_tiny_vocab(out_dir, text_lines, vocab_size, byte_fallback=True, character_coverage=1.0)
    return str(out_dir)


def test_vocabulary_fingerprint_mismatch_names_both(tmp_path):
    lines = [f"line {i} of words like tokens shards mdeberta {i * 7}" for i in range(300)]
    used = train_vocab(tmp_path / "used", lines)
    other = train_vocab(tmp_path / "other", [s.upper() + " extra" for s in lines])
    info = vocab_info(used)
    ds = ShardDataset(make(tmp_path / "shards", vocab=info))
    assert ds.vocab_sha256 == io.sha256_file(used + "/spm.model") == info["sha256"]
    assert ds.special_ids["mask"] == ds.vocab_size - 1 == 300
    ds.check_vocab(used)
    ds.check_vocab(info["sha256"])
    other_sha = io.sha256_file(other + "/spm.model")
    with pytest.raises(VocabMismatchError) as err:
        ds.check_vocab(other)
    message = str(err.value)
    assert info["sha256"] in message and other_sha in message
    assert "other/spm.model" in message and "shards/manifest.json" in message


def test_writer_module_stays_light():
    code = "import sys, mdeberta.shards; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def craft(url, **entry):
    """Rewrite the first shard entry of a shard manifest with `entry`'s fields."""
    manifest = io.read_json(io.join(url, "manifest.json"))
    manifest["shards"][0].update(entry)
    io.write_json(io.join(url, "manifest.json"), manifest)


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "../other/shard-00000.bin"},
        {"name": "/tmp/shard-00000.bin"},
        {"name": "shard-0.bin"},
        {"name": "shard-00000.bin\n"},
        {"name": "shard-00001.bin"},  # the second entry's name twice
        {"sha256": "../../escape"},
        {"sha256": "A" * 64},
        {"sha256": None},
        {"sequences": "7"},
    ],
    ids=[
        "parent",
        "absolute",
        "pattern",
        "newline",
        "duplicate",
        "sha-path",
        "sha-case",
        "sha-none",
        "sequences",
    ],
)
def test_crafted_manifest_fields_are_refused_naming_the_manifest(tmp_path, entry):
    """Defect: a shard name of ../other/shard-00000.bin trained on a file outside the directory."""
    url = make(tmp_path / "shards", n=20, per_shard=7)
    outside = tmp_path / "other"
    outside.mkdir()
    shutil.copy(tmp_path / "shards" / "shard-00000.bin", outside / "shard-00000.bin")
    craft(url, **entry)
    with pytest.raises(ShardFormatError, match=r"shards/manifest\.json: shard \d: "):
        ShardDataset(url)


def test_a_crafted_remote_sha256_never_becomes_a_path(tmp_path):
    """Defect: for remote shards a crafted sha256 made the reader create a lock file and write
    downloaded bytes outside its cache directory."""
    url = make(f"memory://crafted-{tmp_path.name}", n=20, per_shard=7)
    craft(url, sha256="../../escape")
    cache = tmp_path / "a" / "b" / "cache"
    with pytest.raises(ShardFormatError, match=r"manifest\.json: shard 0: sha256"):
        take(iter(ShardDataset(url, cache_dir=str(cache))), 20)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_shards_written_again_are_the_same_data(tmp_path, monkeypatch):
    first = ShardDataset(make(tmp_path, n=20, per_shard=7))
    monkeypatch.setattr("time.time", lambda: 4e9)
    again = ShardDataset(make(tmp_path, n=20, per_shard=7))
    assert again.manifest["created_unix"] != first.manifest["created_unix"]
    assert again.identity == first.identity
    other = ShardDataset(make(tmp_path / "other", n=21, per_shard=7))
    assert other.identity != first.identity


def test_the_manifest_is_written_only_over_shards_that_match(tmp_path):
    entries = [write_shard(str(tmp_path / "shard-00000.bin"), np.ones((3, SEQ_LEN)))]
    (tmp_path / "shard-00000.bin").write_bytes(np.zeros((3, SEQ_LEN), "<u4").tobytes())
    with pytest.raises(ManifestError, match=r"shard-00000\.bin: sha256"):
        write_shards_manifest(str(tmp_path), entries, seq_len=SEQ_LEN, vocab=VOCAB)
    assert not (tmp_path / "manifest.json").exists()
