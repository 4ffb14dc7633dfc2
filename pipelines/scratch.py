"""Scratch files: where the clean and shard jobs keep text and token rows between steps.

Beam's local runner holds every grouped value in memory with no spill path, and Dataflow bills
shuffle by the byte, so neither job sends its payload through a GroupByKey, a Reshuffle or a side
input: the payload waits in files under `{output}/_job/`, and only their names, counts and dedup
keys are grouped (cc_net, datatrove and dolma do the same). Every scratch file is read once, by
one reader that knows its name, so the number of reads grows with the data, not with the product
of writers and readers.

A scratch file is named from what it holds (input file, batch, chunk), never from the worker, the
attempt or the time, and written to a temporary name then renamed: a retried bundle rewrites the
same bytes under the same name, and a reader never sees half a file. The job removes the folder
once its output is complete; a job that fails leaves it, and a rerun clears it first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from mdeberta import io

JOB_DIR = "_job"


def url(output: str, *parts: str) -> str:
    """A scratch path under the job's output."""
    return io.join(output, JOB_DIR, *parts)


def write(where: str, data: bytes) -> None:
    with io.atomic_write(where, "wb", compression=None) as f:
        f.write(data)


def write_runs(where: str, runs: dict) -> list[tuple]:
    """Write the byte strings of `runs` one after another, in key order, as one file; returns
    (key, start, length) of each, so a reader of one key makes one ranged read. One file per
    writer, not one per (writer, reader): the files and the writes grow with the data alone."""
    index, start = [], 0
    for key in sorted(runs):
        index.append((key, start, len(runs[key])))
        start += len(runs[key])
    write(where, b"".join(runs[key] for key in sorted(runs)))
    return index


def read(where: str, start: int = 0, length: int = -1) -> bytes:
    """The file's bytes, or `length` of them from `start` (one ranged read on object stores)."""
    with io.open_file(where, "rb", compression=None) as f:
        if start:
            f.seek(start)
        data = f.read(length)
    if length >= 0 and len(data) != length:
        raise RuntimeError(f"{where}: {len(data)} bytes at {start}, expected {length} (truncated)")
    return data


READ_THREADS = 16
"""Ranged reads in flight at once in `read_runs` on an object store, where each waits ~50 ms
for its first byte. Local files are read one after another: the page cache answers at once."""


def read_runs(runs: Iterable[tuple[str, int, int]]) -> Iterator[bytes]:
    """The bytes of each (file, start, length) run, in order."""
    runs = list(runs)
    if all(io.is_local(where) for where, _, _ in runs):
        yield from (read(*run) for run in runs)
        return
    with ThreadPoolExecutor(READ_THREADS) as pool:
        yield from pool.map(lambda run: read(*run), runs)


def clear(output: str) -> None:
    """Remove the scratch folder, if any (a finished job's, or an interrupted one's)."""
    fs, path = io.url_to_fs(url(output))
    if fs.exists(path):
        fs.rm(path, recursive=True)
