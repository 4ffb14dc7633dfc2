"""ShardDataset: a resumable, rank- and worker-aware torch reader over token shards.

Order of one epoch e (the shards were already shuffled globally at write time):
  the shards in the permutation `default_rng([seed, e, 0]).permutation(num_shards)`, each shard's
  rows in the permutation `default_rng([seed, e, 1, shard_index]).permutation(rows)`. This global
  order of N sequences is split across ranks by stride: rank r takes global positions
  r, r + W, r + 2W, ... (so ranks r < N % W get one sample more per epoch). A rank's stream runs
  through its epoch e, then e + 1, and so on without end.
Across DataLoader workers the rank's stream is cut into batches of `batch_size` samples and
worker w of k takes batches w, w + k, ...: exactly how the DataLoader interleaves its workers'
batches, so the batches come out in the same order as with num_workers=0.
Memory is flat in the dataset size: one row permutation per open shard, never one per dataset.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from mdeberta import io
from mdeberta.manifest import checked_sha256, identity
from mdeberta.shards import (
    NUMPY_DTYPE,
    ShardFormatError,
    check_sha256,
    check_size,
    check_vocab,
    read_shards_manifest,
    sha256_local,
)

log = logging.getLogger(__name__)

_OPEN_SHARDS = 4  # memory maps kept open per process (a stream reads one shard at a time)
_BLOCK = 2048  # samples gathered per numpy step: amortises Python overhead per sample
_VERIFIED: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) hashed in this process


def default_cache_dir() -> str:
    root = os.environ.get("MDEBERTA_CACHE") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "mdeberta", "shards")


def cache_path(cache_dir: str, sha256: str) -> str:
    """Where a remote shard is cached: named by its content, from a validated sha256 only (a
    manifest's field never becomes a path unchecked)."""
    return os.path.join(cache_dir, f"{checked_sha256(sha256, 'a cached shard')}.bin")


def rank_size(num_sequences: int, rank: int, world_size: int) -> int:
    """Samples rank `rank` gets per epoch: len(range(rank, N, W))."""
    return max(0, (num_sequences - rank + world_size - 1) // world_size)


def worker_stream(count: int, worker: int, num_workers: int, batch_size: int, first: int = 0):
    """Stream indices t >= 0 a worker reads: batches worker, worker + k, ... of `batch_size`.

    Returns `count` batches' worth starting at the worker's batch number `first`.
    """
    batches = worker + num_workers * np.arange(first, first + count, dtype=np.int64)
    return (batches[:, None] * batch_size + np.arange(batch_size, dtype=np.int64)).ravel()


class EpochOrder:
    """The global order of one epoch: shard permutation, then a row permutation inside each."""

    def __init__(self, counts: list[int], seed: int):
        self.counts = np.asarray(counts, dtype=np.int64)
        self.seed = seed
        self._epoch = -1
        self._row_perms: OrderedDict[int, np.ndarray] = OrderedDict()

    def _set_epoch(self, epoch: int) -> None:
        if epoch != self._epoch:
            self._epoch = epoch
            self.order = np.random.default_rng([self.seed, epoch, 0]).permutation(len(self.counts))
            self.ends = np.cumsum(self.counts[self.order])
            self._row_perms.clear()

    def rows(self, epoch: int, shard: int) -> np.ndarray:
        self._set_epoch(epoch)
        perm = self._row_perms.get(shard)
        if perm is None:
            rng = np.random.default_rng([self.seed, epoch, 1, shard])
            perm = self._row_perms[shard] = rng.permutation(int(self.counts[shard]))
            while len(self._row_perms) > _OPEN_SHARDS:
                self._row_perms.popitem(last=False)
        return perm

    def locate(self, epoch: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(slot in this epoch's shard order, position inside that shard) of global positions."""
        self._set_epoch(epoch)
        slots = np.searchsorted(self.ends, positions, side="right")
        return slots, positions - (self.ends[slots] - self.counts[self.order[slots]])


class ShardDataset(IterableDataset):
    """Infinite stream of token sequences (torch.int64, shape [seq_len]) for one rank.

    url: a token-shards directory (local path or fsspec URL). Local shards are memory-mapped;
    remote ones are downloaded once into `cache_dir` (content-addressed by sha256, verified).
    Opening checks that every shard the manifest lists is there with its size; `verify_all()`
    hashes them all.
    batch_size: the DataLoader's batch size; with workers, each takes whole batches (module doc).
    verify: hash each local shard once per process before first use (remote: always, on download;
    a cached copy is hashed once per process before it is trusted).

    Position: iteration starts at `(epoch, consumed)` (set_position / load_state_dict). Reading in
    this process (num_workers=0) advances it, so state_dict() is exact there. DataLoader workers
    read copies and this object's position stays where iteration started: then
    `ds.position_after(samples_the_trainer_consumed)` is the exact (epoch, consumed) to save.
    """

    def __init__(
        self,
        url: str,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        cache_dir: str | None = None,
        batch_size: int = 1,
        verify: bool = True,
    ):
        super().__init__()
        if not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world {world_size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.url = str(url).rstrip("/")
        self.manifest = read_shards_manifest(self.url)
        self.identity = identity(self.manifest)  # what the shards hold, not when they were made
        self.seed, self.rank, self.world_size = int(seed), rank, world_size
        self.batch_size, self.verify = batch_size, verify
        self.local = io.is_local(self.url)
        self.cache_dir = cache_dir or default_cache_dir()
        self.shards: list[dict[str, Any]] = self.manifest["shards"]
        self.num_sequences = int(self.manifest["num_sequences"])
        self.num_samples = rank_size(self.num_sequences, rank, world_size)
        if self.num_samples == 0:
            raise ValueError(
                f"{self.url}: {self.num_sequences} sequences cannot give every one of "
                f"{world_size} ranks a sample"
            )
        self._order = EpochOrder([s["sequences"] for s in self.shards], self.seed)
        self._maps: OrderedDict[int, np.ndarray] = OrderedDict()
        self._pool: ThreadPoolExecutor | None = None
        self._prefetched: set[int] = set()
        self.epoch, self.consumed = 0, 0
        self._check_sizes()

    # checking the data

    def _check_sizes(self) -> None:
        """Every listed shard is there with the size its manifest records (a remote shard may be
        in the cache instead): a truncated shard fails now, not days into a run."""
        remote_sizes: dict[str, int] | None = None
        for entry in self.shards:
            url = io.join(self.url, entry["name"])
            if self.local:
                path = io.url_to_fs(url)[1]
                size = os.path.getsize(path) if os.path.exists(path) else None
            else:
                cached = self._cached(entry)
                if os.path.exists(cached) and os.path.getsize(cached) == entry["bytes"]:
                    continue  # hashed before its first use
                if remote_sizes is None:  # one listing, not a request per shard
                    fs, path = io.url_to_fs(self.url)
                    remote_sizes = {
                        i["name"].rstrip("/").rsplit("/", 1)[-1]: i["size"] for i in fs.ls(path)
                    }
                size = remote_sizes.get(entry["name"])
            if size is None:
                raise ShardFormatError(f"{url}: listed in {self.url}/manifest.json but missing")
            check_size(url, entry, size)

    def verify_all(self, rank: int = 0, world_size: int = 1) -> None:
        """Hash shards rank, rank + world_size, ... (all by default; the ranks of a run share
        the work) against the manifest now (remote ones: download them into the cache, verified),
        so that a corrupt shard fails before training, not when it is first read."""
        for entry in self.shards[rank::world_size]:
            self._local_path(entry, hash_now=True)

    # facts the trainer reads

    @property
    def seq_len(self) -> int:
        return int(self.manifest["seq_len"])

    @property
    def vocab_sha256(self) -> str:
        """The vocabulary fingerprint: sha256 of the spm.model the shards were made with."""
        return self.manifest["vocab"]["sha256"]

    @property
    def vocab_size(self) -> int:
        return int(self.manifest["vocab"]["vocab_size"])

    @property
    def special_ids(self) -> dict[str, int]:
        return dict(self.manifest["vocab"]["special_ids"])

    def check_vocab(self, vocab: str) -> None:
        """Raise VocabMismatchError, naming both fingerprints, unless `vocab` matches.

        vocab: a vocabulary directory (its spm.model is hashed) or a sha256 hex string.
        """
        check_vocab(self.manifest, vocab, shards_url=self.url)

    # position

    def set_position(self, epoch: int, consumed: int) -> None:
        """The next iteration starts at sample `consumed` of this rank's order for `epoch`."""
        if epoch < 0 or not 0 <= consumed <= self.num_samples:
            raise ValueError(
                f"position (epoch {epoch}, consumed {consumed}) out of range: this rank has "
                f"{self.num_samples} samples per epoch"
            )
        self.epoch, self.consumed = divmod(epoch * self.num_samples + consumed, self.num_samples)

    def position_after(self, samples: int) -> tuple[int, int]:
        """(epoch, consumed) once `samples` more samples of this rank have been read."""
        return divmod(self.epoch * self.num_samples + self.consumed + samples, self.num_samples)

    def state_dict(self) -> dict[str, Any]:
        """Position (exact when iterated in this process) and what it is a position in."""
        return {
            "epoch": self.epoch,
            "consumed": self.consumed,
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "num_sequences": self.num_sequences,
            "identity": self.identity,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at a saved position; a new world size resumes at the same global position."""
        if state["num_sequences"] != self.num_sequences or state["seed"] != self.seed:
            raise ValueError(
                f"cannot resume {self.url}: saved state is for {state['num_sequences']} sequences "
                f"and seed {state['seed']}, this dataset has {self.num_sequences} and {self.seed}"
            )
        epoch, consumed = state["epoch"], state["consumed"]
        if state["world_size"] != self.world_size:
            # Ranks step in lockstep, so every old rank consumed `consumed`: global positions
            # [0, consumed * W_old) of the epoch are done; take this rank's share of them.
            done = consumed * state["world_size"]
            consumed = min(self.num_samples, max(0, -(-(done - self.rank) // self.world_size)))
        self.set_position(epoch, consumed)

    # iteration

    def __iter__(self):
        info = get_worker_info()
        if info is None:
            return self.stream(track=True)
        return self.stream(info.id, info.num_workers)

    def stream(self, worker: int = 0, num_workers: int = 1, *, track: bool = False):
        """The samples DataLoader worker `worker` of `num_workers` yields, from the set position.

        track: advance this object's position per sample (only meaningful in the main process).
        """
        start = self.epoch * self.num_samples + self.consumed
        # small datasets: a block beyond one epoch would recompute permutations for nothing
        per_block = max(1, min(_BLOCK, self.num_samples) // self.batch_size)
        first = 0
        while True:
            t = worker_stream(per_block, worker, num_workers, self.batch_size, first)
            first += per_block
            for sample in torch.from_numpy(self._gather(start + t)):
                if track:
                    self.epoch, self.consumed = self.position_after(1)
                yield sample

    def _gather(self, stream: np.ndarray) -> np.ndarray:
        """Rows [len(stream), seq_len] int64 for absolute stream indices of this rank (sorted)."""
        out = np.empty((len(stream), self.seq_len), dtype=np.int64)
        epochs, index = np.divmod(stream, self.num_samples)
        positions = self.rank + index * self.world_size
        for epoch in np.unique(epochs):
            sel = np.flatnonzero(epochs == epoch)
            slots, inner = self._order.locate(int(epoch), positions[sel])
            cuts = np.flatnonzero(np.diff(slots)) + 1
            for part in np.split(np.arange(len(sel)), cuts):
                slot = int(slots[part[0]])
                shard = int(self._order.order[slot])
                if not self.local:
                    self._prefetch(slot + 1)
                rows = self._order.rows(int(epoch), shard)[inner[part]]
                out[sel[part]] = self._open(shard)[rows]
        return out

    def _prefetch(self, slot: int) -> None:
        """Download the shard after the current one in the background (remote data only)."""
        if slot >= len(self.shards):
            return
        shard = int(self._order.order[slot])
        if shard in self._prefetched:
            return
        self._prefetched.add(shard)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="shard-prefetch")
        entry = self.shards[shard]
        # A failure here is raised again, with its message, when the shard is actually read.
        self._pool.submit(self._fetch, io.join(self.url, entry["name"]), entry)

    def _open(self, shard: int) -> np.ndarray:
        mm = self._maps.get(shard)
        if mm is None:
            entry = self.shards[shard]
            path = self._local_path(entry)
            rows = entry["sequences"]
            mm = np.memmap(path, dtype=NUMPY_DTYPE, mode="r", shape=(rows, self.seq_len))
            self._maps[shard] = mm
            while len(self._maps) > _OPEN_SHARDS:
                self._maps.popitem(last=False)
        return mm

    def _local_path(self, entry: dict[str, Any], hash_now: bool = False) -> str:
        url = io.join(self.url, entry["name"])
        if not self.local:
            return self._fetch(url, entry)
        path = io.url_to_fs(url)[1]
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: listed in {self.url}/manifest.json but missing")
        if self.verify or hash_now:
            _verify_once(path, entry)  # size, then sha256 once per process
        else:
            check_size(path, entry, os.path.getsize(path))
        return path

    def _cached(self, entry: dict[str, Any]) -> str:
        return cache_path(self.cache_dir, entry["sha256"])

    def _fetch(self, url: str, entry: dict[str, Any]) -> str:
        """A remote shard's copy in the cache: downloaded once, verifying size and sha256 on the
        way; a copy already there is hashed once per process before it is trusted, and fetched
        again if it does not match."""
        dest = self._cached(entry)
        with contextlib.suppress(FileNotFoundError, ShardFormatError):
            _verify_once(dest, entry)
            return dest
        os.makedirs(self.cache_dir, exist_ok=True)
        # One downloader per shard across this machine's ranks and workers.
        with open(dest + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if os.path.exists(dest):  # fetched meanwhile by another process, or damaged
                try:
                    _verify_once(dest, entry)
                    return dest
                except ShardFormatError as e:
                    log.warning("%s; fetching %s again", e, url)
                    os.remove(dest)
            _download(url, entry, dest)
        return dest

    def __getstate__(self):
        # Memory maps would pickle as whole arrays; each worker process opens its own.
        state = self.__dict__.copy()
        state["_maps"] = OrderedDict()
        state["_pool"], state["_prefetched"] = None, set()
        return state


def _verify_once(path: str, entry: dict[str, Any]) -> None:
    """Check a local file's size and sha256 against its manifest entry, once per process for
    the same (path, size, mtime)."""
    stat = os.stat(path)
    check_size(path, entry, stat.st_size)
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        check_sha256(path, entry, sha256_local(path))
        _VERIFIED.add(key)


def _download(url: str, entry: dict[str, Any], dest: str) -> None:
    tmp = f"{dest}.tmp-{uuid.uuid4().hex[:12]}"
    digest, size = hashlib.sha256(), 0
    try:
        with io.open_file(url, "rb", compression=None) as src, open(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        check_size(url, entry, size)
        check_sha256(url, entry, digest.hexdigest())
        os.replace(tmp, dest)
        stat = os.stat(dest)  # hashed on the way in: verified for this process
        _VERIFIED.add((dest, stat.st_size, stat.st_mtime_ns))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
