"""File helpers over fsspec: every path is a local path or any fsspec URL (gs://, s3://, memory://).

Compression is transparent by extension (.xz, .zst, .gz). Writes go to a temporary name first and
are renamed into place, so a reader never sees half a file; on object stores, where a rename is a
copy, the same holds because an artifact's manifest is written last (see mdeberta.manifest).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from io import BufferedReader, RawIOBase, TextIOWrapper
from typing import IO, Any

import fsspec
from fsspec.core import url_to_fs as _url_to_fs

_CHUNK = 1 << 20


def url_to_fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem that holds `url` and the path inside it."""
    try:
        return _url_to_fs(str(url))
    except ImportError as e:  # fsspec names the package to install (gcsfs, s3fs), not the URL
        raise type(e)(f"{url}: {e}", name=e.name) from e


def join(url: str, *parts: str) -> str:
    """Join path parts with "/" on any filesystem (os.path.join would break URLs on Windows)."""
    out = str(url).rstrip("/")
    for part in parts:
        out = f"{out}/{str(part).strip('/')}"
    return out


def exists(url: str) -> bool:
    fs, path = url_to_fs(url)
    return fs.exists(path)


def makedirs(url: str) -> None:
    fs, path = url_to_fs(url)
    fs.makedirs(path, exist_ok=True)


def listdir(url: str) -> list[str]:
    """Names (not paths) of the entries directly inside `url`, sorted."""
    fs, path = url_to_fs(url)
    return sorted(os.path.basename(p.rstrip("/")) for p in fs.ls(path, detail=False))


def file_size(url: str) -> int:
    fs, path = url_to_fs(url)
    return int(fs.size(path))


def open_file(
    url: str, mode: str = "rb", compression: str | None = "infer", *, digest=None
) -> IO[Any]:
    """Open `url` for reading or writing, (de)compressing .xz/.zst/.gz by extension.

    Text modes use UTF-8. Writing creates the parent directory. `digest` (zstd or uncompressed
    reading only): a hashlib object fed the file's bytes as stored while they are read, so a
    reader that reads to the end has the file's checksum without a second pass.
    """
    if "w" in mode or "a" in mode:
        fs, path = url_to_fs(url)
        parent = os.path.dirname(path)
        if parent:
            fs.makedirs(parent, exist_ok=True)
    if compression == "infer":
        compression = fsspec.utils.infer_compression(str(url))
    if digest is not None and ("r" not in mode or compression not in ("zstd", None)):
        raise ValueError(f"{url}: a digest needs reading, uncompressed or zstd, not {mode!r}")
    if "r" in mode and (compression == "zstd" or digest is not None):
        raw = fsspec.open(str(url), "rb").open()
        if digest is not None:
            raw = _Digesting(raw, digest)
        # fsspec's zstd reader returns a truncated stream's data, or nothing, without an error
        f = BufferedReader(_ZstdReader(raw, str(url)) if compression else raw, _CHUNK)
        return f if "b" in mode else TextIOWrapper(f, encoding="utf-8")
    kwargs = {"encoding": "utf-8"} if "b" not in mode else {}
    return fsspec.open(str(url), mode, compression=compression, **kwargs).open()


class _Digesting(RawIOBase):
    """A raw byte stream that feeds every byte read through it to a hashlib object."""

    def __init__(self, raw: IO[bytes], digest):
        self._raw, self._digest = raw, digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        self._digest.update(data)
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._digest.update(data)
        return data

    def close(self) -> None:
        self._raw.close()
        super().close()


class _ZstdReader(RawIOBase):
    """Streaming zstd decompression (any number of frames) that fails on a truncated stream."""

    def __init__(self, raw: IO[bytes], url: str):
        import zstandard

        self._raw, self._url, self._zstd = raw, url, zstandard
        self._obj = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""
        self._started = False  # inside a frame: EOF now would mean truncation

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = self._raw.read(_CHUNK)
            if not chunk:
                if self._started and not self._obj.eof:
                    raise EOFError(f"{self._url}: truncated zstd stream (the file ends mid-frame)")
                return 0
            self._pending = memoryview(self._decompress(chunk))
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]  # a memoryview: no copy of the rest (small reads)
        return n

    def _decompress(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            try:
                out.append(self._obj.decompress(chunk))
            except self._zstd.ZstdError as e:
                raise OSError(f"{self._url}: corrupt zstd data ({e})") from e
            self._started = True
            chunk = self._obj.unused_data if self._obj.eof else b""
            if self._obj.eof and chunk:  # a further frame follows
                self._obj = self._zstd.ZstdDecompressor().decompressobj()
        return b"".join(out)

    def close(self) -> None:
        self._raw.close()
        super().close()


@contextlib.contextmanager
def atomic_write(url: str, mode: str = "wb", compression: str | None = "infer") -> Iterator[IO]:
    """Write to a temporary sibling of `url` and rename it into place when the block succeeds.

    On failure the temporary file is removed and `url` is untouched. Compression is inferred from
    `url`, not from the temporary name.
    """
    fs, path = url_to_fs(url)
    if compression == "infer":
        compression = fsspec.utils.infer_compression(path)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    tmp_url = _as_url(fs, tmp)
    try:
        with open_file(tmp_url, mode, compression=compression) as f:
            yield f
        fs.mv(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError, OSError):
            fs.rm(tmp)
        raise


def write_text(url: str, text: str) -> None:
    with atomic_write(url, "wt") as f:
        f.write(text)


def read_text(url: str) -> str:
    with open_file(url, "rt") as f:
        return f.read()


def write_json(url: str, obj: Any) -> None:
    """Write JSON atomically with sorted keys, so equal objects give equal bytes."""
    write_text(url, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(url: str) -> Any:
    try:
        return json.loads(read_text(url))
    except json.JSONDecodeError as e:
        raise ValueError(f"{url}: not valid JSON ({e})") from e


def sha256_file(url: str) -> str:
    """Hex sha256 of a file's bytes as stored (no decompression)."""
    digest = hashlib.sha256()
    with open_file(url, "rb", compression=None) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def expand_inputs(patterns: Sequence[str]) -> list[str]:
    """Expand globs and directories into a sorted list of file URLs.

    A directory stands for the files directly inside it. Fails before any work is done if a
    pattern matches nothing, naming the pattern.
    """
    files: list[str] = []
    for pattern in patterns:
        fs, path = url_to_fs(pattern)
        if _has_magic(path):
            matches = sorted(p for p in fs.glob(path) if fs.isfile(p))
        elif fs.isdir(path):
            matches = sorted(p for p in fs.ls(path, detail=False) if fs.isfile(p))
        elif fs.exists(path):
            matches = [path]
        else:
            raise FileNotFoundError(f"input not found: {pattern}")
        if not matches:
            raise FileNotFoundError(f"input matches no file: {pattern}")
        files.extend(_as_url(fs, p) for p in matches)
    return list(dict.fromkeys(files))


def _has_magic(path: str) -> bool:
    return any(c in path for c in "*?[")


def is_local(url: str) -> bool:
    """Whether `url` is on the local filesystem (so it can be memory-mapped, for instance)."""
    return _is_local_fs(url_to_fs(url)[0])


def _is_local_fs(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols


def _as_url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return path if _is_local_fs(fs) else fs.unstrip_protocol(path)
