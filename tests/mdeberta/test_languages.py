import pytest
import regex

from mdeberta.languages import (
    COLUMNS,
    UNICODE_SCRIPT_NAMES,
    XLMR_LANGUAGES,
    XNLI_LANGUAGES,
    LanguageTableError,
    UnknownLanguageError,
    all_languages,
    get_language,
    parse_language_table,
    preset,
    resolve_languages,
    scripts_of,
    suggest_codes,
)

SPECIAL_CODES = ["bn_rom", "hi_rom", "my_zaw", "ta_rom", "te_rom", "ur_rom", "zh-Hans", "zh-Hant"]

# One letter of each script, to check the ISO 15924 -> Unicode name mapping, not only its spelling.
SAMPLE_LETTER = {
    "Arab": "ب", "Armn": "ա", "Beng": "ক", "Cyrl": "д", "Deva": "क", "Ethi": "አ", "Geor": "ა",
    "Grek": "λ", "Gujr": "ક", "Guru": "ਕ", "Hang": "한", "Hani": "中", "Hebr": "ש", "Hira": "あ",
    "Kana": "ア", "Khmr": "ក", "Knda": "ಕ", "Laoo": "ກ", "Latn": "a", "Mlym": "ക", "Mymr": "က",
    "Orya": "କ", "Sinh": "ක", "Taml": "க", "Telu": "క", "Thai": "ก",
}  # fmt: skip


def codes() -> list[str]:
    return [language.code for language in all_languages()]


def test_registry_has_every_cc100_file_once():
    assert len(codes()) == 116 == len(set(codes()))
    assert set(SPECIAL_CODES) <= set(codes())
    assert "zh" not in codes()  # CC-100 has no plain zh file; zh is an alias


def test_romanised_and_special_entries():
    for code in ("bn_rom", "hi_rom", "ta_rom", "te_rom", "ur_rom"):
        language = get_language(code)
        assert language.scripts == ("Latn",)
        assert language.iso639_1 == code.removesuffix("_rom")
    assert scripts_of("zh-Hans") == scripts_of("zh-Hant") == ("Hani",)
    assert scripts_of("ja") == ("Hani", "Hira", "Kana")
    assert scripts_of("ko") == ("Hang", "Hani")
    zawgyi = get_language("my_zaw")
    assert zawgyi.scripts == ("Mymr",) and "non-Unicode" in zawgyi.notes
    assert get_language("ns").iso639_1 is None and get_language("ns").iso639_3 == "nso"


def test_unspaced_languages():
    unspaced = {language.code for language in all_languages() if not language.space_separated}
    assert unspaced == {"zh-Hans", "zh-Hant", "ja", "th", "lo", "km", "my", "my_zaw"}


def test_iso_codes_are_well_formed():
    for language in all_languages():
        assert regex.fullmatch(r"[a-z]{3}", language.iso639_3), language
        assert language.iso639_1 is None or regex.fullmatch(r"[a-z]{2}", language.iso639_1)
    assert get_language("en").iso639_3 == "eng"


def test_every_script_has_a_unicode_name_that_regex_matches():
    used = {script for language in all_languages() for script in language.scripts}
    assert used <= set(UNICODE_SCRIPT_NAMES)
    for iso, unicode_name in UNICODE_SCRIPT_NAMES.items():
        pattern = regex.compile(rf"\p{{Script={unicode_name}}}")
        assert pattern.fullmatch(SAMPLE_LETTER[iso]), (iso, unicode_name)
        assert not pattern.fullmatch("1")
    assert get_language("hi").unicode_scripts == ("Devanagari",)


def test_sizes_are_the_appendix_values_in_binary_units():
    sizes = {language.code: language.cc100_bytes for language in all_languages()}
    assert sizes["en"] == 82 * 1024**3
    assert sizes["ar"] == round(5.4 * 1024**3)
    assert sizes["my_zaw"] == 178 * 1024**2
    assert sizes["sc"] == 143 * 1024
    assert 545 < sum(sizes.values()) / 1024**3 < 555  # the statmt total is about 550 GiB
    assert max(sizes, key=sizes.get) == "en"


def test_xnli_codes_resolve_to_corpus_codes():
    assert len(XNLI_LANGUAGES) == 15 and "zh" in XNLI_LANGUAGES
    for code in XNLI_LANGUAGES:
        assert get_language(code).iso639_1 == code
    assert get_language("zh").code == "zh-Hans"
    xnli = resolve_languages("xnli")
    assert xnli == [code if code != "zh" else "zh-Hans" for code in XNLI_LANGUAGES]


def test_presets():
    every = resolve_languages(None)
    assert every == codes() == resolve_languages("all") == resolve_languages("cc100")
    assert resolve_languages("xlmr") == list(XLMR_LANGUAGES)
    assert len(set(XLMR_LANGUAGES)) == 100 and set(XLMR_LANGUAGES) < set(every)
    not_in_xlmr = set(every) - set(XLMR_LANGUAGES)
    assert not_in_xlmr == set("ff gn ht ig lg li ln ns qu rm sc ss tn wo yo zu".split())
    with pytest.raises(UnknownLanguageError, match="presets: all, cc100"):
        preset("xtreme")


def test_resolve_strings_and_lists_keep_order_and_drop_duplicates():
    assert resolve_languages("de, en,de,zh") == ["de", "en", "zh-Hans"]
    assert resolve_languages(["sw", "ja,sw", "zh-Hant"]) == ["sw", "ja", "zh-Hant"]
    mixed = resolve_languages("ja,XNLI,en")
    assert mixed[0] == "ja" and len(mixed) == 16 and mixed.count("en") == 1
    with pytest.raises(ValueError, match="no languages"):
        resolve_languages(" , ")
    with pytest.raises(TypeError):
        resolve_languages(["en", 3])


def test_unknown_code_suggests_nearest_codes():
    with pytest.raises(UnknownLanguageError, match=r"'eng'.*en \(English\)") as caught:
        get_language("eng")
    assert isinstance(caught.value, ValueError)
    with pytest.raises(UnknownLanguageError, match=r"en \(English\)"):
        resolve_languages("de,English")
    assert suggest_codes("zh_Hans")[0] == "zh-Hans"
    assert suggest_codes("EN") == ["en"]
    assert suggest_codes("ben") == ["bn", "bn_rom"]
    assert suggest_codes("germn")[0] == "de"
    with pytest.raises(UnknownLanguageError, match="no close match"):
        get_language("qqqq")


def row(**overrides: str) -> str:
    fields = dict(
        code="xx",
        name="Example",
        iso639_1="xx",
        iso639_3="xxx",
        scripts="Latn",
        space_separated="yes",
        cc100_bytes="10",
        notes="",
    )
    fields.update(overrides)
    return "\t".join(fields[column] for column in COLUMNS)


def table(*rows: str) -> str:
    return "\n".join(["\t".join(COLUMNS), *rows]) + "\n"


def test_parse_valid_table():
    parsed = parse_language_table(table(row(), row(code="yy", iso639_1="", scripts="Cyrl Latn")))
    assert list(parsed) == ["xx", "yy"]
    assert parsed["yy"].iso639_1 is None and parsed["yy"].scripts == ("Cyrl", "Latn")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (table(row(), row(code="yy") + "\textra"), r"bad\.tsv:3: expected 8 .* got 9"),
        (table(row(scripts="Latn Klingon")), r"bad\.tsv:2: unknown script 'Klingon'"),
        (table(row(), row()), r"bad\.tsv:3: duplicate code 'xx'"),
        (table(row(space_separated="maybe")), r"bad\.tsv:2: space_separated"),
        (table(row(cc100_bytes="1.5G")), r"bad\.tsv:2: cc100_bytes"),
        (table(row(iso639_3="en")), r"bad\.tsv:2: iso639_3"),
        ("code\tname\n" + row(), r"bad\.tsv:1: header"),
        (table(), r"bad\.tsv: no languages"),
    ],
)
def test_parse_rejects_malformed_tables_naming_file_and_line(text: str, message: str):
    with pytest.raises(LanguageTableError, match=message):
        parse_language_table(text, "bad.tsv")
