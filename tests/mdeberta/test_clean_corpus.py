"""The clean-corpus format: one writer, one reader, and a manifest that is the source of truth."""

from __future__ import annotations

import json

import pytest

from mdeberta import io
from mdeberta.clean_corpus import (
    CorpusError,
    Part,
    document_id,
    list_parts,
    part_name,
    read_part,
    read_stats,
    write_corpus_manifest,
    write_part,
)
from mdeberta.manifest import IncompleteArtifactError

DOCS = {
    "de": [("d1", "de", "Erster Absatz\nzweiter"), ("d2", "de", "Noch einer")],
    "en": [("e1", "en", "One paragraph")],
}


def corpus(root, docs=DOCS, parts=1) -> str:
    files = {}
    for lang, records in docs.items():
        for p in range(parts):
            name = f"{lang}/{part_name(p, parts)}"
            files[name] = write_part(str(root / name), records[p::parts], level=3)
    io.write_json(str(root / "stats.json"), {"languages": {}, "totals": {}})
    write_corpus_manifest(str(root), files, {})
    return str(root)


def test_document_id_is_stable_and_language_scoped():
    assert document_id("en", "text") == document_id("en", "text")
    assert document_id("en", "text") != document_id("de", "text")
    assert len(document_id("en", "text")) == 32


def test_parts_are_written_hashed_and_read_back(tmp_path):
    root = corpus(tmp_path, parts=2)
    parts = list_parts(root)
    assert [(p.lang, p.url.rsplit("/", 1)[1]) for p in parts] == [
        ("de", "part-00000-of-00002.jsonl.zst"),
        ("de", "part-00001-of-00002.jsonl.zst"),
        ("en", "part-00000-of-00002.jsonl.zst"),
        ("en", "part-00001-of-00002.jsonl.zst"),
    ]
    assert all(p.sha256 == io.sha256_file(p.url) for p in parts)
    docs = [d for p in list_parts(root, ["de"]) for d in read_part(p)]
    assert docs == [{"id": i, "lang": k, "text": t} for i, k, t in DOCS["de"]]
    manifest = io.read_json(f"{root}/manifest.json")
    assert manifest["files"]["stats.json"]["sha256"] == io.sha256_file(f"{root}/stats.json")
    assert manifest["files"]["de/part-00000-of-00002.jsonl.zst"]["docs"] == 1


def test_a_part_that_differs_from_its_manifest_fails_once_read_to_the_end(tmp_path):
    root = corpus(tmp_path)
    (part,) = list_parts(root, ["en"])
    other = write_part(str(tmp_path / "other.jsonl.zst"), [("e2", "en", "Other text")], level=3)
    (tmp_path / "en" / part_name(0, 1)).write_bytes((tmp_path / "other.jsonl.zst").read_bytes())
    with pytest.raises(CorpusError, match=rf"{part.url}: sha256 {other['sha256']} but .*manifest"):
        list(read_part(part))
    assert next(read_part(part))["id"] == "e2"  # a reader that stops early checks nothing


def test_the_manifest_decides_which_parts_exist(tmp_path):
    root = corpus(tmp_path)
    (tmp_path / "en" / part_name(0, 1)).unlink()
    assert [p.lang for p in list_parts(root, ["de"])] == ["de"]  # en is not read: not checked
    with pytest.raises(FileNotFoundError, match=r"en/part-00000-of-00001.jsonl.zst: listed in"):
        list_parts(root)
    root = corpus(tmp_path)
    (tmp_path / "fr").mkdir()
    (tmp_path / "fr" / part_name(0, 1)).write_bytes(b"")
    with pytest.raises(CorpusError, match=r"fr/part-00000-of-00001.jsonl.zst: .*not listed in"):
        list_parts(root, ["de"])  # a stray part anywhere: the corpus is not what it says


@pytest.mark.parametrize(
    "name, sha256",
    [
        ("../other/part-00000-of-00001.jsonl.zst", "0" * 64),
        ("de/part-0-of-1.jsonl.zst", "0" * 64),
        ("de/part-00000-of-00001.jsonl.zst", "not a digest"),
    ],
)
def test_manifest_entries_never_become_paths_unchecked(tmp_path, name, sha256):
    root = corpus(tmp_path)
    manifest = io.read_json(f"{root}/manifest.json")
    manifest["files"][name] = {"sha256": sha256, "bytes": 0, "docs": 0}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CorpusError, match=rf"manifest.json: entry '{name}'"):
        list_parts(root)


def test_a_manifest_without_files_is_refused(tmp_path):
    root = corpus(tmp_path)
    manifest = io.read_json(f"{root}/manifest.json")
    del manifest["files"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CorpusError, match="manifest.json: lists no files"):
        list_parts(root)


@pytest.mark.parametrize("version", [1, 3])
def test_a_format_version_this_code_does_not_read_is_refused_by_name(tmp_path, version):
    """Version 1 put documents in parts by id hash: refused, not read as if it were version 2."""
    root = corpus(tmp_path)
    manifest = io.read_json(f"{root}/manifest.json")
    manifest["format_version"] = version
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    message = f"manifest.json: clean-corpus format_version {version}, .* reads 2 .*re-run"
    for read in (list_parts, read_stats):
        with pytest.raises(CorpusError, match=message):
            read(root)


def test_stats_are_checked_against_the_manifest(tmp_path):
    root = corpus(tmp_path)
    assert read_stats(root) == {"languages": {}, "totals": {}}
    (tmp_path / "stats.json").write_text('{"languages": {}, "totals": {"docs_in": 7}}\n')
    with pytest.raises(CorpusError, match=r"stats.json: sha256 .* but .*manifest.json records"):
        read_stats(root)
    (tmp_path / "stats.json").unlink()
    with pytest.raises(FileNotFoundError, match="stats.json not found"):
        read_stats(root)
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(IncompleteArtifactError):
        read_stats(root)


def test_unreadable_and_foreign_lines_are_named(tmp_path):
    url = str(tmp_path / "x.jsonl.zst")
    (tmp_path / "x.jsonl.zst").write_bytes(b"not a zstd frame" * 8)
    with pytest.raises(CorpusError, match=r"x.jsonl.zst: unreadable after line 0"):
        list(read_part(Part("de", url)))
    rows = [{"id": "a", "lang": "de", "text": "x"}, {"id": "b", "lang": "fr", "text": "y"}]
    with io.open_file(url, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(CorpusError, match=r"x.jsonl.zst:2: document of language 'fr'"):
        list(read_part(Part("de", url)))
