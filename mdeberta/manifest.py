"""Artifact manifests: `manifest.json`, written last, whose presence means an artifact is complete.

A manifest records what the artifact is (kind, format version), how it was made (command, resolved
options, library versions) and from what (the sha256 of each input artifact's manifest), so any
checkpoint can be traced back to the raw files.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import shlex
import sys
import time
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


class IncompleteArtifactError(FileNotFoundError):
    """An artifact directory without manifest.json: missing, still being written, or interrupted."""


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
    """sha256 of an artifact's manifest.json: the fingerprint downstream manifests record."""
    url = io.join(artifact_dir, MANIFEST)
    if not io.exists(url):
        raise IncompleteArtifactError(f"{artifact_dir}: no {MANIFEST} (incomplete artifact?)")
    with io.open_file(url, "rb", compression=None) as f:
        return hashlib.sha256(f.read()).hexdigest()


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
    with the sha256 of its manifest. `files` maps file names to facts about them (sha256, bytes...).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    manifest: dict[str, Any] = {
        "kind": kind,
        "format_version": version,
        "created_unix": int(time.time()),
        "command": shlex.join(sys.argv),
        "options": options,
        "libraries": library_versions(),
        "inputs": {
            role: {"url": str(url), "manifest_sha256": manifest_sha256(url)}
            for role, url in (inputs or {}).items()
        },
    }
    if files is not None:
        manifest["files"] = files
    manifest.update(extra or {})
    io.write_json(io.join(out_dir, MANIFEST), manifest)
    return manifest


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
