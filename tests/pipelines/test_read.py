"""Reading CC-100 text and JSONL files: document boundaries, formats, limits, bad input."""

from __future__ import annotations

import gzip
import json
import lzma
import tracemalloc

import pytest
import zstandard

from mdeberta.languages import UnknownLanguageError
from mdeberta.pipelines.read import (
    BadInputFileError,
    RawDocument,
    batches,
    decode_utf8,
    language_from_name,
    plan_inputs,
    read_documents,
)

TEXT = b"First doc, line one\nline two\n\nSecond \xff doc\n\n\n \nThird doc\n"


def read_all(path, **kwargs):
    (file,) = plan_inputs([str(path)], None)
    return list(read_documents(file, max_doc_bytes=kwargs.pop("limit", 1 << 20), **kwargs))


@pytest.mark.parametrize(
    "name, data",
    [
        ("en.txt", TEXT),
        ("en.txt.xz", lzma.compress(TEXT)),
        ("en.txt.gz", gzip.compress(TEXT)),
        ("en.txt.zst", zstandard.ZstdCompressor().compress(TEXT)),
    ],
)
def test_documents_are_blocks_between_blank_lines(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    docs = read_all(tmp_path / name)
    assert [d.text for d in docs] == ["First doc, line one\nline two", "Second  doc", "Third doc"]
    assert [d.paragraphs for d in docs] == [2, 1, 1]
    assert [d.position for d in docs] == [0, 1, 2]
    assert [d.repaired for d in docs] == [False, True, False]
    assert {d.lang for d in docs} == {"en"}


def test_language_from_file_name():
    assert language_from_name("gs://b/cc100/zh-Hans.txt.xz") == "zh-Hans"
    assert language_from_name("/data/my_zaw.txt") == "my_zaw"
    assert language_from_name("de.jsonl.zst") == "de"
    with pytest.raises(UnknownLanguageError, match="en"):
        language_from_name("eng.txt.xz")


def test_a_10_mb_line_is_flagged_in_bounded_memory(tmp_path):
    data = b"x" * (10 << 20) + b"\nnext line\n\nsmall doc\n"
    (tmp_path / "en.txt").write_bytes(data)
    del data
    tracemalloc.start()
    big, small = read_all(tmp_path / "en.txt", limit=1 << 20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20  # the line is never held whole, only pieces of the read limit
    assert (big.flag, big.text, big.paragraphs) == ("too_long", "", 2)
    assert big.chars == (10 << 20) + len("\nnext line")
    assert small.text == "small doc" and small.flag is None


def test_truncated_xz_raises_naming_the_file(tmp_path):
    data = lzma.compress(b"".join(b"doc %d\nmore text\n\n" % i for i in range(20000)))
    (tmp_path / "en.txt.xz").write_bytes(data[: len(data) // 2])
    docs = []
    with pytest.raises(BadInputFileError, match="en.txt.xz"):
        for doc in _stream(tmp_path):
            docs.append(doc)
    assert 0 < len(docs) < 20000
    assert all(d.flag in (None, "bad_file") for d in docs)


def _stream(tmp_path):
    (file,) = plan_inputs([str(tmp_path / "en.txt.xz")], None)
    return read_documents(file, max_doc_bytes=1 << 20)


def test_jsonl_language_field_and_fallbacks(tmp_path):
    rows = [
        json.dumps({"text": "Hallo\n\nWelt", "lang": "de"}),
        json.dumps({"text": "no language"}),
        json.dumps({"text": "x", "lang": "tlh"}),
        "{broken",
        "",
        json.dumps({"text": "Bonjour", "lang": "fr"}),
    ]
    (tmp_path / "mix.jsonl").write_text("\n".join(rows) + "\n")
    (tmp_path / "es.jsonl").write_text(json.dumps({"text": "Hola"}) + "\n")
    items = read_all(tmp_path / "mix.jsonl", languages={"de", "es"})
    assert items[0] == RawDocument("de", 0, 0, "Hallo\nWelt", 10, 2)
    assert items[1:] == [
        ("unattributed", "unknown_language"),
        ("unattributed", "unknown_language"),
        ("unattributed", "bad_json"),
        ("other_language", "fr"),
    ]
    (es,) = read_all(tmp_path / "es.jsonl")
    assert (es.lang, es.text) == ("es", "Hola")  # no "lang": the file name says it


def test_plan_inputs_filters_languages_and_fails_on_missing(tmp_path):
    for name in ("en.txt", "de.txt.xz", "rows.jsonl"):
        (tmp_path / name).write_bytes(b"")
    files = plan_inputs([str(tmp_path)], {"de"})
    assert [(f.lang, f.jsonl) for f in files] == [("de", False), (None, True)]
    assert [f.index for f in files] == [0, 1]
    with pytest.raises(FileNotFoundError, match="missing"):
        plan_inputs([str(tmp_path / "missing" / "*.txt.xz")], None)
    (tmp_path / "english.txt").write_bytes(b"")
    with pytest.raises(UnknownLanguageError, match="english"):
        plan_inputs([str(tmp_path / "english.txt")], None)


def test_batches_bound_documents_and_characters():
    records = [("en", 0, i, "x" * 10) for i in range(7)]
    assert [len(b) for b in batches(records, max_docs=3)] == [3, 3, 1]
    assert [len(b) for b in batches(records, max_chars=25)] == [3, 3, 1]
    assert list(batches([])) == []


def test_decode_utf8_drops_invalid_bytes_and_says_so():
    assert decode_utf8("héllo".encode()) == ("héllo", False)
    assert decode_utf8(b"h\xffi \xe2\x82") == ("hi ", True)


def test_a_file_named_by_no_language_names_both_routes(tmp_path):
    """A user's own corpus, mycorpus.txt: the error says how to name it, or to give JSONL."""
    (tmp_path / "mycorpus.txt").write_bytes(b"")
    with pytest.raises(UnknownLanguageError) as error:
        plan_inputs([str(tmp_path / "mycorpus.txt")], None)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'mycorpus.txt'}: unknown language code 'mycorpus'")
    assert "CC-100 code (de.txt.xz" in message and '{"text": ..., "lang": ...}' in message
