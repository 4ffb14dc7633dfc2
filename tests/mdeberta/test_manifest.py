import pytest

from mdeberta import io
from mdeberta.manifest import (
    IncompleteArtifactError,
    manifest_sha256,
    read_manifest,
    write_manifest,
)


@pytest.mark.parametrize("scheme", ["local", "memory"])
def test_manifest_round_trip_records_inputs(tmp_path, scheme):
    base = str(tmp_path) if scheme == "local" else f"memory://manifest-{tmp_path.name}"
    corpus, vocab = io.join(base, "corpus"), io.join(base, "vocab")
    write_manifest(corpus, "clean-corpus", 1, {"workers": 2})
    m = write_manifest(
        vocab,
        "vocabulary",
        1,
        {"vocab_size": 100},
        inputs={"corpus": corpus},
        extra={"spm_sha256": "ab"},
    )
    assert m["inputs"]["corpus"]["manifest_sha256"] == manifest_sha256(corpus)
    read = read_manifest(vocab, kind="vocabulary")
    assert read["spm_sha256"] == "ab"
    assert read["libraries"]["torch"]
    assert read["options"] == {"vocab_size": 100}


def test_missing_manifest_is_incomplete_artifact(tmp_path):
    (tmp_path / "shards").mkdir()
    with pytest.raises(IncompleteArtifactError, match="shards"):
        read_manifest(str(tmp_path / "shards"))


def test_wrong_kind_and_unknown_kind(tmp_path):
    write_manifest(str(tmp_path), "run", 1, {})
    with pytest.raises(ValueError, match="expected a 'vocabulary'"):
        read_manifest(str(tmp_path), kind="vocabulary")
    with pytest.raises(ValueError, match="valid kinds"):
        write_manifest(str(tmp_path), "nonsense", 1, {})


def test_input_without_manifest_is_refused(tmp_path):
    with pytest.raises(IncompleteArtifactError):
        write_manifest(str(tmp_path / "out"), "run", 1, {}, inputs={"data": str(tmp_path)})


def test_invalidate_makes_an_artifact_incomplete(tmp_path):
    from mdeberta.manifest import invalidate

    write_manifest(str(tmp_path), "run", 1, {})
    invalidate(str(tmp_path))
    invalidate(str(tmp_path))  # nothing left to remove is fine
    with pytest.raises(IncompleteArtifactError):
        read_manifest(str(tmp_path))


def test_identity_is_content_not_when_or_how(tmp_path, monkeypatch):
    from mdeberta.manifest import identity

    (tmp_path / "a.txt").write_text("same bytes")
    files = {"a.txt": {"sha256": io.sha256_file(str(tmp_path / "a.txt")), "bytes": 10}}
    first = write_manifest(str(tmp_path), "clean-corpus", 1, {"workers": 1}, files=files)
    monkeypatch.setattr("time.time", lambda: 4e9)
    monkeypatch.setattr("sys.argv", ["mdeberta", "clean", "--overwrite"])
    again = write_manifest(str(tmp_path), "clean-corpus", 1, {"workers": 8}, files=files)
    assert again["created_unix"] != first["created_unix"] and again["command"] != first["command"]
    assert identity(again) == identity(first)  # a rerun that wrote the same bytes
    (tmp_path / "a.txt").write_text("other bytes")
    files = {"a.txt": {"sha256": io.sha256_file(str(tmp_path / "a.txt")), "bytes": 11}}
    assert identity(write_manifest(str(tmp_path), "clean-corpus", 1, {}, files=files)) != identity(
        first
    )


def test_inputs_are_recorded_by_identity(tmp_path, monkeypatch):
    from mdeberta.manifest import artifact_identity, file_records

    corpus, vocab = str(tmp_path / "corpus"), str(tmp_path / "vocab")
    io.write_text(io.join(corpus, "stats.json"), "{}")
    files = file_records(corpus, ["stats.json"])
    write_manifest(corpus, "clean-corpus", 1, {}, files=files)
    recorded = write_manifest(vocab, "vocabulary", 1, {}, inputs={"corpus": corpus})["inputs"]
    monkeypatch.setattr("time.time", lambda: 4e9)
    write_manifest(corpus, "clean-corpus", 1, {}, files=files)  # made again: same data
    assert recorded["corpus"]["identity"] == artifact_identity(corpus)
    assert recorded["corpus"]["manifest_sha256"] != manifest_sha256(corpus)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.unlink(), "listed in the manifest but missing"),
        (lambda p: p.write_text("longer text"), "11 bytes, the manifest records 4"),
        (lambda p: p.write_text("DATA"), "sha256 .* the manifest records"),
    ],
    ids=["missing", "size", "sha256"],
)
def test_a_manifest_is_written_only_over_the_files_it_lists(tmp_path, damage, message):
    from mdeberta.manifest import ManifestError

    part = tmp_path / "de" / "part-00000-of-00001.jsonl.zst"
    part.parent.mkdir()
    part.write_text("data")
    files = {"de/part-00000-of-00001.jsonl.zst": {"sha256": io.sha256_file(str(part)), "bytes": 4}}
    damage(part)  # another writer, a cleanup, a bad disk: between writing and the manifest
    with pytest.raises(ManifestError, match=rf"de/part-00000-of-00001\.jsonl\.zst: {message}"):
        write_manifest(str(tmp_path), "clean-corpus", 1, {}, files=files)
    assert not (tmp_path / "manifest.json").exists()


@pytest.mark.parametrize("name", ["../outside", "/etc/passwd", "de/../../x", ".hidden"])
def test_listed_names_stay_inside_the_artifact(tmp_path, name):
    from mdeberta.manifest import ManifestError, verify_files

    with pytest.raises(ManifestError, match="not a file name inside the artifact"):
        verify_files(str(tmp_path), {name: {"sha256": "0" * 64, "bytes": 0}})


def test_a_manifest_without_files_is_identified_by_all_of_it(tmp_path, monkeypatch):
    from mdeberta.manifest import identity

    first = write_manifest(str(tmp_path), "run", 1, {})
    monkeypatch.setattr("time.time", lambda: 4e9)
    assert identity(write_manifest(str(tmp_path), "run", 1, {})) != identity(first)
