"""Token shards: fixed-length packed sequences of uint32 token ids, plus a manifest.

Format (version 1; docs/formats.md is the reference for other programs):

- `{dir}/shard-NNNNN.bin`: raw little-endian uint32, no header; `sequences * seq_len` ids,
  row-major, so `numpy.fromfile(path, "<u4").reshape(-1, seq_len)` reads one.
  Every row is `[CLS] ... [SEP]`.
- `{dir}/manifest.json` (kind "token-shards", written last): `seq_len`, `dtype`, `num_sequences`,
  `vocab` {sha256, url, vocab_size, special_ids}, `shards` [{name, sequences, sha256, bytes}] in
  order, and whatever the producer adds (per-language counts, the sampling plan).

This module is light (numpy only): the writer, manifest validation, checksum and vocabulary checks.
The torch reader `ShardDataset` lives in mdeberta.shard_reader, which builds on this module.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from mdeberta import io
from mdeberta.manifest import (
    MANIFEST,
    ManifestError,
    checked_name,
    checked_sha256,
    read_manifest,
    verify_files,
    write_manifest,
)

KIND = "token-shards"
FORMAT_VERSION = 1
DTYPE = "uint32"
NUMPY_DTYPE = np.dtype("<u4")  # little-endian on every platform, whatever the host order
SHARD_PATTERN = "shard-{index:05d}.bin"
SHARD_NAME = re.compile(r"shard-\d{5}\.bin")  # what a manifest's shard name must be, in full
# 32768 sequences of 512 ids = 64 MiB per shard: MosaicML's default shard size, big enough that
# listing and hashing stay cheap, small enough to stream through a cache.
DEFAULT_SEQUENCES_PER_SHARD = 32768
_CHUNK = 1 << 20


class ShardFormatError(ManifestError):
    """A shard directory or file that does not match its manifest (truncated, corrupt, wrong)."""


class VocabMismatchError(ValueError):
    """Token shards made with another vocabulary than the one in use."""


# helpers


def shard_name(index: int) -> str:
    return SHARD_PATTERN.format(index=index)


def expected_bytes(sequences: int, seq_len: int) -> int:
    return sequences * seq_len * NUMPY_DTYPE.itemsize


def vocab_info(vocab_dir: str) -> dict[str, Any]:
    """The `vocab` block of a shard manifest, from a vocabulary directory's manifest."""
    vm = read_manifest(vocab_dir, kind="vocabulary")
    return {
        "sha256": vm["spm_sha256"],
        "url": str(vocab_dir),
        "vocab_size": int(vm["vocab_size"]),
        "special_ids": {k: int(v) for k, v in vm["special_ids"].items()},
    }


# writing


def write_shard(url: str, rows: np.ndarray | Iterable[np.ndarray]) -> dict[str, Any]:
    """Write one shard file atomically from a [sequences, seq_len] array, or from an iterable of
    such blocks (written and hashed as they come, so the whole shard never sits in memory);
    return its entry {name, sequences, sha256, bytes}."""
    blocks = [rows] if isinstance(rows, np.ndarray) else rows
    digest, sequences, nbytes, width = hashlib.sha256(), 0, 0, None
    with io.atomic_write(url, "wb", compression=None) as f:
        for block in blocks:
            block = np.ascontiguousarray(block, dtype=NUMPY_DTYPE)
            if block.ndim != 2 or block.shape[1] != (width or block.shape[1]):
                raise ValueError(
                    f"{url}: a shard is [sequences, seq_len] rows, got a block of {block.shape}"
                )
            width = block.shape[1]
            data = block.reshape(-1).view(np.uint8)  # the array's own bytes: no copy
            f.write(data)
            digest.update(data)
            sequences, nbytes = sequences + block.shape[0], nbytes + data.nbytes
    return {
        "name": os.path.basename(url),
        "sequences": sequences,
        "sha256": digest.hexdigest(),
        "bytes": nbytes,
    }


def write_shards_manifest(
    out_dir: str,
    shards: list[dict[str, Any]],
    *,
    seq_len: int,
    vocab: Mapping[str, Any],
    options: dict[str, Any] | None = None,
    inputs: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the manifest of a shard directory (call it last): every shard must exist with the
    size and sha256 of its entry."""
    missing = {"sha256", "url", "vocab_size", "special_ids"} - set(vocab)
    if missing:
        raise ValueError(f"vocab lacks {sorted(missing)}; it needs sha256, url, vocab_size, ...")
    verify_files(out_dir, {s["name"]: s for s in shards})
    body = {
        "seq_len": int(seq_len),
        "dtype": DTYPE,
        "byte_order": "little",
        "num_sequences": sum(s["sequences"] for s in shards),
        "vocab": dict(vocab),
        "shards": list(shards),
    }
    body.update(extra or {})
    return write_manifest(out_dir, KIND, FORMAT_VERSION, options or {}, inputs, extra=body)


def _batched_rows(sequences: Iterable[np.ndarray], seq_len: int, size: int):
    """Group an iterable of [seq_len] arrays into [<=size, seq_len] uint32 blocks."""
    block: list[np.ndarray] = []
    for i, seq in enumerate(sequences):
        seq = np.asarray(seq)
        if seq.shape != (seq_len,):
            raise ValueError(f"sequence {i} has shape {seq.shape}, expected ({seq_len},)")
        if seq.dtype.kind == "i" and seq.size and seq.min() < 0:
            raise ValueError(f"sequence {i} has negative ids")
        block.append(seq)
        if len(block) == size:
            yield np.stack(block).astype(NUMPY_DTYPE)
            block = []
    if block:
        yield np.stack(block).astype(NUMPY_DTYPE)


def write_token_shards(
    out_dir: str,
    sequences: Iterable[np.ndarray],
    *,
    seq_len: int,
    vocab: Mapping[str, Any],
    sequences_per_shard: int = DEFAULT_SEQUENCES_PER_SHARD,
    extra: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    inputs: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Write `sequences` (each [seq_len] ids) in order into shards, then the manifest; return it.

    The order is kept: shuffle before calling. Holds one shard in memory at a time.
    """
    if seq_len < 2 or sequences_per_shard < 1:
        raise ValueError(
            f"need seq_len >= 2 and sequences_per_shard >= 1, got {seq_len}, {sequences_per_shard}"
        )
    io.makedirs(out_dir)
    shards = [
        write_shard(io.join(out_dir, shard_name(i)), rows)
        for i, rows in enumerate(_batched_rows(sequences, seq_len, sequences_per_shard))
    ]
    if not shards:
        raise ValueError(f"{out_dir}: no sequences to write")
    return write_shards_manifest(
        out_dir, shards, seq_len=seq_len, vocab=vocab, options=options, inputs=inputs, extra=extra
    )


# reading and checking


def read_shards_manifest(url: str) -> dict[str, Any]:
    """The manifest of a shard directory, validated; errors name the directory or the file."""
    manifest = read_manifest(url, kind=KIND)
    where = io.join(url, MANIFEST)
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ShardFormatError(
            f"{where}: token-shards format_version {version}, this reader knows {FORMAT_VERSION}"
        )
    if manifest.get("dtype") != DTYPE:
        raise ShardFormatError(f"{where}: dtype {manifest.get('dtype')!r}, expected {DTYPE!r}")
    shards = manifest.get("shards") or []
    if not shards:
        raise ShardFormatError(f"{where}: lists no shards")
    seq_len = manifest.get("seq_len")
    if not isinstance(seq_len, int) or seq_len < 2:
        raise ShardFormatError(f"{where}: seq_len must be an integer >= 2, got {seq_len!r}")
    names = set()
    for i, entry in enumerate(shards):
        _check_entry(entry, f"{where}: shard {i}", seq_len)
        if entry["name"] in names:
            raise ShardFormatError(f"{where}: shard {i}: {entry['name']} is listed twice")
        names.add(entry["name"])
    if sum(s["sequences"] for s in shards) != manifest.get("num_sequences"):
        raise ShardFormatError(f"{where}: num_sequences differs from the sum over shards")
    return manifest


def _check_entry(entry: Any, where: str, seq_len: int) -> None:
    """A shard entry's fields become a path and a cache name: each must have its exact form."""
    if not isinstance(entry, Mapping):
        raise ShardFormatError(f"{where}: an entry must be an object, got {entry!r}")
    checked_name(entry.get("name"), SHARD_NAME, where, ShardFormatError)
    checked_sha256(entry.get("sha256"), where, ShardFormatError)
    sequences = entry.get("sequences")
    if type(sequences) is not int or sequences < 1:
        raise ShardFormatError(f"{where}: sequences must be an integer >= 1, got {sequences!r}")
    if entry.get("bytes") != expected_bytes(sequences, seq_len):
        raise ShardFormatError(f"{where}: {entry['name']} has inconsistent bytes")


def check_size(path: str, entry: Mapping[str, Any], size: int) -> None:
    """Fail, naming the file, when a shard's size differs from its manifest entry."""
    if size != entry["bytes"]:
        what = "truncated" if size < entry["bytes"] else "longer than recorded"
        raise ShardFormatError(
            f"{path}: {size} bytes but the manifest records {entry['bytes']} "
            f"({entry['sequences']} sequences): the shard is {what}; re-copy or re-make it"
        )


def check_sha256(path: str, entry: Mapping[str, Any], digest: str) -> None:
    """Fail, naming the file and both digests, when a shard's checksum differs from the manifest."""
    if digest != entry["sha256"]:
        raise ShardFormatError(
            f"{path}: sha256 {digest} but the manifest records {entry['sha256']}: "
            "the shard is corrupt or was modified"
        )


def sha256_local(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_shards(url: str) -> dict[str, Any]:
    """Check every shard's size and sha256 against the manifest (reads all data); return it."""
    manifest = read_shards_manifest(url)
    for entry in manifest["shards"]:
        path = io.join(url, entry["name"])
        if not io.exists(path):
            raise ShardFormatError(f"{path}: listed in the manifest but missing")
        check_size(path, entry, io.file_size(path))
        check_sha256(path, entry, io.sha256_file(path))
    return manifest


def vocab_fingerprint(vocab: str) -> tuple[str, str]:
    """(sha256 of spm.model, what it came from) for a vocabulary dir or a literal sha256."""
    if len(vocab) == 64 and all(c in "0123456789abcdef" for c in vocab):
        return vocab, "the given fingerprint"
    model = io.join(vocab, "spm.model")
    if io.exists(model):
        return io.sha256_file(model), model
    return read_manifest(vocab, kind="vocabulary")["spm_sha256"], io.join(vocab, MANIFEST)


def check_vocab(manifest: Mapping[str, Any], vocab: str, *, shards_url: str = "") -> None:
    """Refuse token shards whose vocabulary differs from `vocab` (a vocab dir or a sha256)."""
    expected, source = vocab_fingerprint(vocab)
    recorded = manifest["vocab"]["sha256"]
    if recorded != expected:
        where = io.join(shards_url, MANIFEST) if shards_url else "the token shards"
        raise VocabMismatchError(
            f"vocabulary mismatch: {where} was made with vocabulary sha256 {recorded} "
            f"(spm.model of {manifest['vocab'].get('url')}), but {source} has sha256 {expected}; "
            "re-shard the corpus with this vocabulary or train with the one the shards used"
        )
