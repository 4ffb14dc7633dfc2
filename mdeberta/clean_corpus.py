"""The clean corpus: the format `mdeberta clean` writes and build-vocab, shard and the reports read.

Format (version 2; docs/formats.md is the reference for other programs):

- `{dir}/{lang}/part-NNNNN-of-MMMMM.jsonl.zst`: zstd-compressed JSON lines
  `{"id": document_id(lang, text), "lang": lang, "text": paragraphs joined by "\\n"}`. A part is
  one chunk of one input file (pipelines/parts.py), its documents in input order; a language's
  parts are its files' chunks in the job's file order. (Version 1 spread documents over parts by
  id hash, sorted by id; readers refuse it, as they refuse any version they do not know.)
- `{dir}/stats.json`: per-language counts of what the cleaning kept and removed, and why.
- `{dir}/manifest.json` (kind "clean-corpus", written last): `files` maps every part
  (`"{lang}/{name}"`: docs, bytes, sha256) and `stats.json` (bytes, sha256).

The manifest is the source of truth. A reader takes exactly the parts it lists (`list_parts`):
a listed part that is missing or a part file it does not list is refused by name, and every part
read to its end is checked against its sha256 on the way (`read_part`), with no second pass.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import zstandard

from mdeberta import io
from mdeberta.manifest import MANIFEST, read_manifest, write_manifest

KIND = "clean-corpus"
FORMAT_VERSION = 2
STATS = "stats.json"
PART_GLOB = "part-*.jsonl.zst"
PART_PATTERN = re.compile(r"part-(\d{5})-of-(\d{5})\.jsonl\.zst")
# "{lang}/{part}" as a manifest lists it: a language code's shape (no dots, no slashes) and a part
_LISTED_PART = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)/(" + PART_PATTERN.pattern + ")")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_JSON_CHUNK = 1 << 20  # bytes of lines parsed per json.loads call


class CorpusError(ValueError):
    """A clean corpus that does not match its manifest, or a part that cannot be read; the
    message names the file (and the line or the manifest)."""


def part_name(shard: int, shards: int) -> str:
    return f"part-{shard:05d}-of-{shards:05d}.jsonl.zst"


def document_id(lang: str, text: str) -> str:
    """Stable id: 128-bit BLAKE2b of the language and the normalised text, as 32 hex digits."""
    return hashlib.blake2b(f"{lang}\n{text}".encode(), digest_size=16).hexdigest()


# writing


def write_part(url: str, records: Iterable[tuple[str, str, str]], level: int) -> dict[str, Any]:
    """Write (id, lang, text) records as a part file, streaming; returns {docs, bytes, sha256}."""
    digest, size, docs = hashlib.sha256(), 0, 0
    with io.atomic_write(url, "wb", compression=None) as f:

        class _Hashing:  # zstd writes through this to hash the bytes on their way out
            def write(self, data):
                nonlocal size
                digest.update(data)
                size += len(data)
                return f.write(data)

        with zstandard.ZstdCompressor(level=level).stream_writer(_Hashing(), closefd=False) as z:
            for doc_id, lang, text in records:
                line = json.dumps({"id": doc_id, "lang": lang, "text": text}, ensure_ascii=False)
                z.write(line.encode("utf-8") + b"\n")
                docs += 1
    return {"docs": docs, "bytes": size, "sha256": digest.hexdigest()}


def write_corpus_manifest(
    out_dir: str, parts: Mapping[str, Mapping[str, Any]], options: dict, extra: dict | None = None
) -> dict[str, Any]:
    """The manifest of a corpus whose parts (`"{lang}/{name}"`: write_part's entry) and
    stats.json are all written: call it last."""
    url = io.join(out_dir, STATS)
    files = {**parts, STATS: {"bytes": io.file_size(url), "sha256": io.sha256_file(url)}}
    return write_manifest(out_dir, KIND, FORMAT_VERSION, options, files=files, extra=extra)


# reading


@dataclass(frozen=True)
class Part:
    """One part file to read: its language, where it is, and what its manifest records."""

    lang: str
    url: str
    sha256: str | None = None
    """Checked once the part is read to its end; None checks nothing (a file outside a corpus)."""
    manifest: str = ""
    """The manifest that lists the part, for messages."""


def _read_manifest(corpus: str) -> dict:
    """The corpus manifest, refused by name if its format is not the one this code reads."""
    manifest = read_manifest(corpus, kind=KIND)
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise CorpusError(
            f"{io.join(corpus, MANIFEST)}: clean-corpus format_version {version}, this version of "
            f"mdeberta reads {FORMAT_VERSION} (docs/formats.md); re-run mdeberta clean"
        )
    return manifest


def list_parts(corpus: str, languages: Iterable[str] | None = None) -> list[Part]:
    """The parts of `languages` (None: all) that the corpus manifest lists, by language and name.

    Refuses, naming the file and the manifest, a part file in the corpus that the manifest does
    not list (left by another run: reading it would count its documents twice) and a listed part
    of these languages that is missing.
    """
    manifest_url = io.join(corpus, MANIFEST)
    listed = _listed_parts(_read_manifest(corpus), manifest_url)
    fs, root = io.url_to_fs(corpus)
    root = root.rstrip("/")
    present = {path[len(root) + 1 :] for path in fs.glob(f"{root}/*/{PART_GLOB}")}
    for name in sorted(present - set(listed)):
        raise CorpusError(
            f"{io.join(corpus, name)}: a part file not listed in {manifest_url}; remove it "
            "(a stray from another run?) or re-run mdeberta clean"
        )
    wanted = None if languages is None else set(languages)
    parts = []
    for name, sha256 in sorted(listed.items()):
        lang, url = name.split("/", 1)[0], io.join(corpus, name)
        if wanted is not None and lang not in wanted:
            continue
        if name not in present:
            raise FileNotFoundError(
                f"{url}: listed in {manifest_url} but missing; re-copy the corpus or re-run "
                "mdeberta clean"
            )
        parts.append(Part(lang, url, sha256, manifest_url))
    return parts


def _listed_parts(manifest: dict, manifest_url: str) -> dict[str, str]:
    """{"{lang}/{name}": sha256} of the parts a manifest lists, each entry validated."""
    files = manifest.get("files")
    if not isinstance(files, dict) or STATS not in files:
        raise CorpusError(f"{manifest_url}: lists no files (not written by mdeberta clean?)")
    listed = {}
    for name, entry in files.items():
        if name == STATS:
            continue
        sha256 = entry.get("sha256") if isinstance(entry, dict) else None
        if not _LISTED_PART.fullmatch(name) or not _SHA256.fullmatch(str(sha256)):
            raise CorpusError(
                f"{manifest_url}: entry {name!r} is no {{lang}}/part-NNNNN-of-MMMMM.jsonl.zst "
                "with a 64-hex-digit sha256"
            )
        listed[name] = sha256
    return listed


def read_part(part: Part) -> Iterator[dict[str, Any]]:
    """The documents {"id", "lang", "text"} of one part file, in file order.

    A line that is no JSON object or holds another language than the part's raises CorpusError
    naming file:line; a part read to its end whose sha256 differs from `part.sha256` raises
    CorpusError naming the file and its manifest. A reader that stops early checks no checksum.
    """
    digest = hashlib.sha256() if part.sha256 else None
    number = 0
    # Binary lines, parsed ~1 MB at a time as one JSON array: json.loads has a fixed cost per
    # call (encoding detection, decoding) that was a tenth of the shard job's overhead per line.
    with io.open_file(part.url, "rb", digest=digest) as f:
        while lines := _read_lines(f, part.url, number):
            try:
                docs = json.loads(b"[" + b",".join(lines) + b"]")
            except ValueError:
                docs = None
            if docs is None or len(docs) != len(lines):  # no JSON, a blank line, two values
                docs = [_parse_line(part.url, number + i, line) for i, line in enumerate(lines, 1)]
            for doc in docs:
                number += 1
                if doc is None:
                    continue  # a blank line
                if not isinstance(doc, dict) or doc.get("lang") != part.lang:
                    found = doc.get("lang") if isinstance(doc, dict) else doc
                    raise CorpusError(
                        f"{part.url}:{number}: document of language {found!r}, "
                        f"expected {part.lang!r} (its directory)"
                    )
                yield doc
    if digest is not None and digest.hexdigest() != part.sha256:
        raise CorpusError(
            f"{part.url}: sha256 {digest.hexdigest()} but {part.manifest or 'its manifest'} "
            f"records {part.sha256}: the part is corrupt or was modified; re-copy it or re-run "
            "mdeberta clean"
        )


def _read_lines(f, url: str, number: int) -> list[bytes]:
    try:
        return f.readlines(_JSON_CHUNK)
    except (OSError, EOFError) as e:  # corrupt or truncated zstd, I/O
        raise CorpusError(f"{url}: unreadable after line {number} ({e})") from e


def _parse_line(url: str, number: int, line: bytes):
    """One line, for the error message of a chunk that did not parse as a whole; None if blank."""
    if not line.strip():
        return None
    try:
        return json.loads(line)
    except ValueError as e:
        raise CorpusError(f"{url}:{number}: not a JSON document ({e})") from None


def read_stats(corpus: str) -> dict[str, Any]:
    """stats.json of a clean corpus, checked against the sha256 its manifest records."""
    manifest_url = io.join(corpus, MANIFEST)
    files = _read_manifest(corpus).get("files") or {}
    url = io.join(corpus, STATS)
    if not io.exists(url):
        raise FileNotFoundError(f"{url} not found: is {corpus} a clean corpus (mdeberta clean)?")
    with io.open_file(url, "rb", compression=None) as f:
        data = f.read()
    recorded = files.get(STATS, {}).get("sha256")
    if hashlib.sha256(data).hexdigest() != recorded:
        raise CorpusError(
            f"{url}: sha256 {hashlib.sha256(data).hexdigest()} but {manifest_url} records "
            f"{recorded}: stats.json is corrupt or was modified; re-run mdeberta clean"
        )
    try:
        return json.loads(data)
    except ValueError as e:
        raise CorpusError(f"{url}: not valid JSON ({e})") from e
