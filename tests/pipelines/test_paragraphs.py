import json

import pytest
import zstandard

from mdeberta.clean_corpus import CorpusError, Part, read_part
from mdeberta.pipelines.paragraphs import read_paragraphs, split_long


def test_short_paragraph_is_untouched():
    assert split_long("Short one. Two.", 100) == (["Short one. Two."], None)


def test_long_paragraph_is_cut_at_sentence_ends():
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    lines, kind = split_long(text, 120)
    assert kind == "sentence"
    assert all(len(x.encode()) <= 120 and x.endswith(".") for x in lines)
    assert " ".join(lines) == text


def test_cjk_is_cut_after_full_stops_without_spaces():
    text = "中文句子很长。" * 60
    lines, kind = split_long(text, 100)
    assert kind == "sentence" and "".join(lines) == text
    assert all(len(x.encode()) <= 100 for x in lines)


def test_no_sentence_end_falls_back_to_spaces_then_characters():
    words = " ".join(["word"] * 100)
    lines, kind = split_long(words, 50)
    assert kind == "space" and " ".join(lines) == words
    blob = "ж" * 100  # 200 bytes, no space: cut at character boundaries
    lines, kind = split_long(blob, 64)
    assert kind == "char" and "".join(lines) == blob
    assert all(len(x.encode()) <= 64 for x in lines)


def _part(tmp_path, rows: str):
    path = tmp_path / "part-00000-of-00001.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(rows.encode()))
    return str(path)


def test_paragraphs_are_keyed_by_document_and_index(tmp_path):
    doc = {"id": "d1", "lang": "en", "text": "first\n\nthird"}
    url = _part(tmp_path, json.dumps(doc) + "\n")
    expected = [("en", "d1:0", "first"), ("en", "d1:2", "third")]
    assert list(read_paragraphs(Part("en", url))) == expected


def test_a_bad_line_names_the_file_and_line(tmp_path):
    url = _part(tmp_path, '{"id": "a", "lang": "en", "text": "x"}\n\n{oops\n')
    with pytest.raises(CorpusError, match=r"part-00000-of-00001.jsonl.zst:3: not a JSON document"):
        list(read_part(Part("en", url)))
