"""Artifact manifests: `manifest.json`, written last, whose presence means an artifact is complete.

A manifest records what the artifact is (kind, format version), how it was made (command, resolved
options, library versions) and from what (each input artifact's identity and the sha256 of its
manifest), so any checkpoint can be traced back to the raw files.

Identity comes from content: an artifact's `identity` hashes its kind, format and the facts about
its data files (their sha256s), never when or by which command it was written, so a rerun that
writes the same bytes is the same artifact and later stages accept it.

A manifest vouches for its files: before writing one, `write_manifest` checks that every file it
lists exists with the recorded size and sha256. Fields read from a manifest become paths only
after `checked_name` / `checked_sha256`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import re
import shlex
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mdeberta import io

MANIFEST = "manifest.json"
KINDS = (
    "clean-corpus",
    "vocabulary",
    "token-shards",
    "run",
    "hf-model",
    "xnli-results",
    "retrieval-results",
)
_LIBRARIES = (
    "mdeberta",
    "apache-beam",
    "sentencepiece",
    "tokenizers",
    "torch",
    "transformers",
    "numpy",
    "fsspec",
)


# The manifest keys that describe an artifact's bytes; the others say how, when and from what it
# was made (options, command, time, libraries, inputs, timings), which a rerun may change.
CONTENT_KEYS = ("kind", "format_version", "files", "shards", "seq_len", "dtype", "byte_order")
SHA256 = re.compile(r"[0-9a-f]{64}")
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # one path component, never "." or ".."
_HASH_THREADS = 8  # files hashed at once when verifying (I/O bound on object stores)


class IncompleteArtifactError(FileNotFoundError):
    """An artifact directory without manifest.json: missing, still being written, or interrupted."""


class ManifestError(ValueError):
    """A manifest that cannot be trusted: a field of the wrong form, or a listed file that is
    missing or differs from its record. The message names the manifest or the file."""


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape artifacts (read without importing them)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def manifest_sha256(artifact_dir: str) -> str:
    """sha256 of an artifact's manifest.json: recorded beside the identity, to trace the exact
    manifest an input had."""
    url = io.join(artifact_dir, MANIFEST)
    if not io.exists(url):
        raise IncompleteArtifactError(f"{artifact_dir}: no {MANIFEST} (incomplete artifact?)")
    with io.open_file(url, "rb", compression=None) as f:
        return hashlib.sha256(f.read()).hexdigest()


def identity(manifest: Mapping[str, Any]) -> str:
    """sha256 of what an artifact holds: its kind, format and data files (CONTENT_KEYS, and the
    vocabulary fingerprint of token shards), not when, where or by which command it was made.
    A manifest that lists no data files is identified by all of it (never equal to another)."""
    if "files" in manifest or "shards" in manifest:
        content = {key: manifest[key] for key in CONTENT_KEYS if key in manifest}
        if isinstance(manifest.get("vocab"), Mapping):
            content["vocab_sha256"] = manifest["vocab"].get("sha256")
    else:
        content = dict(manifest)
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def artifact_identity(artifact_dir: str) -> str:
    """The identity of the complete artifact in `artifact_dir` (see `identity`)."""
    return identity(read_manifest(artifact_dir))


def write_manifest(
    out_dir: str,
    kind: str,
    version: int,
    options: dict[str, Any],
    inputs: dict[str, str] | None = None,
    files: dict[str, dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `{out_dir}/manifest.json`. Call it after every data file of the artifact exists.

    `inputs` maps a role ("corpus", "vocab", ...) to an input artifact directory; each is recorded
    with its identity and the sha256 of its manifest. `files` maps file names (relative to
    `out_dir`) to facts about them, at least sha256 and bytes; they are verified first.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if files is not None:
        verify_files(out_dir, files)
    manifest: dict[str, Any] = {
        "kind": kind,
        "format_version": version,
        "created_unix": int(time.time()),
        "command": shlex.join(sys.argv),
        "options": options,
        "libraries": library_versions(),
        "inputs": {role: _input_record(url) for role, url in (inputs or {}).items()},
    }
    if files is not None:
        manifest["files"] = files
    manifest.update(extra or {})
    io.write_json(io.join(out_dir, MANIFEST), manifest)
    return manifest


def _input_record(url: str) -> dict[str, str]:
    return {
        "url": str(url),
        "identity": artifact_identity(url),
        "manifest_sha256": manifest_sha256(url),
    }


def verify_files(
    artifact_dir: str, files: Mapping[str, Mapping[str, Any]], *, content: bool = True
) -> None:
    """Check that every listed file exists with its recorded size and sha256 (ManifestError naming
    the first that does not). Names are relative paths inside `artifact_dir`, never above it.

    content=False skips the sha256 (for a writer that hashed the bytes as it wrote them)."""
    for name in files:
        if not all(PLAIN_NAME.fullmatch(part) for part in str(name).split("/")):
            raise ManifestError(f"{artifact_dir}: {name!r} is not a file name inside the artifact")
    checks = [(io.join(artifact_dir, name), facts, content) for name, facts in files.items()]
    with ThreadPoolExecutor(min(_HASH_THREADS, max(1, len(checks)))) as pool:
        problems = list(pool.map(lambda check: _problem(*check), checks))
    for problem in problems:
        if problem:
            raise ManifestError(problem)


def _problem(url: str, facts: Mapping[str, Any], content: bool) -> str | None:
    """What is wrong with one listed file, or None."""
    if not io.exists(url):
        return f"{url}: listed in the manifest but missing"
    size = io.file_size(url)
    if "bytes" in facts and size != facts["bytes"]:
        return f"{url}: {size} bytes, the manifest records {facts['bytes']}"
    if content and (digest := io.sha256_file(url)) != facts["sha256"]:
        return (
            f"{url}: sha256 {digest}, the manifest records {facts['sha256']}: changed since it "
            "was written (another writer? a bad disk?)"
        )
    return None


def file_records(artifact_dir: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """{name: {sha256, bytes}} of those of `names` that exist in `artifact_dir`: a `files` block."""
    urls = {name: io.join(artifact_dir, name) for name in names}
    return {
        name: {"sha256": io.sha256_file(url), "bytes": io.file_size(url)}
        for name, url in urls.items()
        if io.exists(url)
    }


def checked_sha256(value: Any, where: str, error: type[Exception] = ManifestError) -> str:
    """`value` if it is a sha256 as hexdigest writes it (64 lowercase hex digits), else `error`
    naming `where` (the manifest and the entry)."""
    if not isinstance(value, str) or not SHA256.fullmatch(value):
        raise error(f"{where}: sha256 must be 64 lowercase hex digits, got {value!r}")
    return value


def checked_name(
    value: Any, pattern: re.Pattern, where: str, error: type[Exception] = ManifestError
) -> str:
    """`value` if it is a string matching `pattern` in full, else `error` naming `where`."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise error(f"{where}: name {value!r} does not match {pattern.pattern}")
    return value


def invalidate(artifact_dir: str) -> None:
    """Remove an artifact's manifest.json, if any, before rewriting the artifact: until the new
    manifest is written last, the directory reads as incomplete, never as the old artifact."""
    url = io.join(artifact_dir, MANIFEST)
    if io.exists(url):
        fs, path = io.url_to_fs(url)
        fs.rm(path)


def read_manifest(artifact_dir: str, kind: str | None = None) -> dict[str, Any]:
    """Read an artifact's manifest, failing clearly if it is absent or of another kind."""
    url = io.join(artifact_dir, MANIFEST)
    if not io.exists(url):
        raise IncompleteArtifactError(
            f"{artifact_dir}: no {MANIFEST}; the artifact is missing or incomplete "
            "(a stage writes its manifest last, so an interrupted run leaves none)"
        )
    manifest = io.read_json(url)
    if kind is not None and manifest.get("kind") != kind:
        raise ValueError(
            f"{artifact_dir}: expected a {kind!r} artifact, found {manifest.get('kind')!r}"
        )
    return manifest
