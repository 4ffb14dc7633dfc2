import json
from pathlib import Path

import pytest
import sentencepiece as spm

from mdeberta.vocab.report import (
    build_report,
    char_script,
    language_metrics,
    piece_script,
    report_markdown,
)


@pytest.fixture(scope="module")
def model(built_vocab) -> bytes:
    return Path(built_vocab[0], "spm.model").read_bytes()


def test_scripts_of_characters_and_pieces():
    assert [char_script(c) for c in "aяα中ไ1,"] == [
        "Latn",
        "Cyrl",
        "Grek",
        "Hani",
        "Thai",
        "Zyyy",
        "Zyyy",
    ]
    assert piece_script("Москва1") == "Cyrl" and piece_script("2024") == "Zyyy"


def test_metrics_count_pieces_per_word_or_per_character(model):
    sp = spm.SentencePieceProcessor(model_proto=model)
    text = ["ka to ri", "ᚠ ne"]
    spaced = language_metrics(sp, text, space_separated=True)
    pieces = sum(len(sp.encode(t)) for t in text)
    assert spaced["unit"] == "word" and spaced["units"] == 5
    assert spaced["pieces_per_unit"] == pytest.approx(pieces / 5)
    assert spaced["byte_fallback_rate"] == pytest.approx(3 / pieces)  # ᚠ is 3 byte pieces
    assert spaced["unk_rate"] == 0
    unspaced = language_metrics(sp, text, space_separated=False)
    assert unspaced["unit"] == "char" and unspaced["units"] == 9  # spaces not counted


def test_report_json_per_language(built_vocab):
    report = json.loads(Path(built_vocab[0], "report.json").read_text())
    langs = report["languages"]
    assert set(langs) == {"en", "ru", "zh-Hans", "sw"}
    assert langs["en"]["unit"] == "word" and langs["zh-Hans"]["unit"] == "char"
    assert langs["en"]["paragraphs"] == 50
    assert report["scripts"]["bytes"] == pytest.approx(256 / report["vocab_pieces"])
    assert {"Latn", "Cyrl", "Hani"} <= set(report["scripts"])
    assert sum(report["scripts"].values()) == pytest.approx(1.0)
    md = Path(built_vocab[0], "report.md").read_text()
    assert "| zh-Hans |" in md and "/ char" in md


def test_compare_puts_another_model_beside_ours(model):
    texts = {"en": ["ka to ri ne", "sa mu le"], "ru": ["ка то ри"]}
    report = build_report(model, texts, compare=model, compare_name="same.model")
    for row in report["languages"].values():
        assert row["compare"] == {k: row[k] for k in row["compare"]}
    assert report["compare"]["scripts"] == report["scripts"]
    md = report_markdown(report)
    assert "Compared with same.model" in md and "compare %" in md
