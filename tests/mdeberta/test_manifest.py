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
