"""The language registry: every CC-100 file code with its names, ISO codes, scripts and size.

The data lives in ``mdeberta/resources/languages.tsv`` (one row per CC-100 file, read once from the
package resources); ``docs/languages.md`` describes the columns and where each value comes from.

Codes are CC-100's file names exactly (``en``, ``bn_rom``, ``my_zaw``, ``zh-Hans``...), since those
are what the corpus directories are called. One alias exists: ``zh`` -> ``zh-Hans``, because XNLI
calls its (Simplified) Chinese ``zh`` while CC-100 splits Chinese into ``zh-Hans`` and ``zh-Hant``.
``XNLI_LANGUAGES`` keeps XNLI's own codes (for reading XNLI files); ``resolve_languages("xnli")``
returns the corpus codes (for selecting CC-100 files).

Presets accepted by ``resolve_languages``:

- ``all`` (alias ``cc100``): the 116 CC-100 files.
- ``xnli``: the 15 XNLI languages, as corpus codes (``zh`` becomes ``zh-Hans``).
- ``xlmr``: the 100 languages of XLM-R's README (facebookresearch/fairseq,
  ``examples/xlmr/README.md``): CC-100 without ff gn ht ig lg li ln ns qu rm sc ss tn wo yo zu.
  The mDeBERTa-v3-base card says it "was trained using the 2.5T CC100 data as XLM-R".

No preset exists for a 102-language mDeBERTa-v3 set: no public source we could find lists one (the
model card tags only the 15 XNLI languages it evaluates), so none is
invented here; see docs/languages.md.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files

TABLE_NAME = "languages.tsv"
COLUMNS = (
    "code",
    "name",
    "iso639_1",
    "iso639_3",
    "scripts",
    "space_separated",
    "cc100_bytes",
    "notes",
)

# ISO 15924 code -> Unicode Script property value, as `regex` accepts in \p{Script=...}.
# Every script the table uses must be here: loading the table checks it.
UNICODE_SCRIPT_NAMES: dict[str, str] = {
    "Arab": "Arabic",
    "Armn": "Armenian",
    "Beng": "Bengali",
    "Cyrl": "Cyrillic",
    "Deva": "Devanagari",
    "Ethi": "Ethiopic",
    "Geor": "Georgian",
    "Grek": "Greek",
    "Gujr": "Gujarati",
    "Guru": "Gurmukhi",
    "Hang": "Hangul",
    "Hani": "Han",
    "Hebr": "Hebrew",
    "Hira": "Hiragana",
    "Kana": "Katakana",
    "Khmr": "Khmer",
    "Knda": "Kannada",
    "Laoo": "Lao",
    "Latn": "Latin",
    "Mlym": "Malayalam",
    "Mymr": "Myanmar",
    "Orya": "Oriya",
    "Sinh": "Sinhala",
    "Taml": "Tamil",
    "Telu": "Telugu",
    "Thai": "Thai",
}

# XNLI 1.0's 15 language codes (as its TSV files write them), alphabetical.
XNLI_LANGUAGES: tuple[str, ...] = (
    "ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh",
)  # fmt: skip

# Codes that are not CC-100 file names but mean one: XNLI's Chinese is Simplified Chinese.
ALIASES: dict[str, str] = {"zh": "zh-Hans"}

# Individual-language ISO 639-3 codes that parallel data sets (Tatoeba/LASER, XTREME) use for a
# CC-100 macrolanguage; the table's own iso639_3 column holds the macrolanguage codes (zho, fas...).
INDIVIDUAL_CODES: dict[str, str] = {
    "cmn": "zh-Hans",  # Mandarin: Tatoeba's cmn sentences are mostly Simplified
    "pes": "fa",  # Iranian Persian
    "swh": "sw",  # Coastal Swahili
    "zsm": "ms",  # Standard Malay
    "nob": "no",  # Norwegian Bokmål
    "arb": "ar",  # Standard Arabic
}

# XLM-R's 100 languages (fairseq examples/xlmr/README.md, a table of English names) as CC-100
# codes: "Filipino" is tl, "Kurdish (Kurmanji)" ku, "Burmese zawgyi font" my_zaw.
XLMR_LANGUAGES: tuple[str, ...] = (
    "af", "am", "ar", "as", "az", "be", "bg", "bn", "bn_rom", "br", "bs", "ca", "cs", "cy", "da",
    "de", "el", "en", "eo", "es", "et", "eu", "fa", "fi", "fr", "fy", "ga", "gd", "gl", "gu", "ha",
    "he", "hi", "hi_rom", "hr", "hu", "hy", "id", "is", "it", "ja", "jv", "ka", "kk", "km", "kn",
    "ko", "ku", "ky", "la", "lo", "lt", "lv", "mg", "mk", "ml", "mn", "mr", "ms", "my", "my_zaw",
    "ne", "nl", "no", "om", "or", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si", "sk", "sl",
    "so", "sq", "sr", "su", "sv", "sw", "ta", "ta_rom", "te", "te_rom", "th", "tl", "tr", "ug",
    "uk", "ur", "ur_rom", "uz", "vi", "xh", "yi", "zh-Hans", "zh-Hant",
)  # fmt: skip

PRESET_NAMES = ("all", "cc100", "xlmr", "xnli")


class UnknownLanguageError(ValueError):
    """A language code that is neither a CC-100 code, an alias nor a preset."""


class LanguageTableError(ValueError):
    """languages.tsv is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Language:
    """One CC-100 file: ``{code}.txt.xz``."""

    code: str
    name: str
    iso639_1: str | None
    iso639_3: str
    scripts: tuple[str, ...]
    space_separated: bool
    cc100_bytes: int
    notes: str = ""

    @property
    def unicode_scripts(self) -> tuple[str, ...]:
        """Unicode Script property names of ``scripts`` (for ``\\p{Script=...}``)."""
        return tuple(UNICODE_SCRIPT_NAMES[s] for s in self.scripts)


# table loading


_ISO639_1 = re.compile(r"[a-z]{2}")
_ISO639_3 = re.compile(r"[a-z]{3}")


def _row_error(where: str, message: str) -> LanguageTableError:
    return LanguageTableError(f"{where}: {message}")


def _parse_scripts(value: str, where: str) -> tuple[str, ...]:
    scripts = tuple(value.split())
    if not scripts:
        raise _row_error(where, "scripts is empty")
    for script in scripts:
        if script not in UNICODE_SCRIPT_NAMES:
            known = " ".join(sorted(UNICODE_SCRIPT_NAMES))
            raise _row_error(where, f"unknown script {script!r} (known ISO 15924 codes: {known})")
    return scripts


def _parse_row(fields: list[str], where: str) -> Language:
    if len(fields) != len(COLUMNS):
        raise _row_error(where, f"expected {len(COLUMNS)} tab-separated columns, got {len(fields)}")
    code, name, iso1, iso3, scripts, spaced, size, notes = (f.strip() for f in fields)
    if not code or not name:
        raise _row_error(where, "code and name must not be empty")
    if iso1 and not _ISO639_1.fullmatch(iso1):
        raise _row_error(where, f"iso639_1 must be two lowercase letters or empty, got {iso1!r}")
    if not _ISO639_3.fullmatch(iso3):
        raise _row_error(where, f"iso639_3 must be three lowercase letters, got {iso3!r}")
    if spaced not in ("yes", "no"):
        raise _row_error(where, f"space_separated must be yes or no, got {spaced!r}")
    if not size.isdigit() or int(size) <= 0:
        raise _row_error(where, f"cc100_bytes must be a positive integer, got {size!r}")
    return Language(
        code=code,
        name=name,
        iso639_1=iso1 or None,
        iso639_3=iso3,
        scripts=_parse_scripts(scripts, where),
        space_separated=spaced == "yes",
        cc100_bytes=int(size),
        notes=notes,
    )


def parse_language_table(text: str, source: str = TABLE_NAME) -> dict[str, Language]:
    """Parse and validate languages.tsv text; errors name ``source`` and the 1-based line."""
    lines = text.splitlines()
    header = tuple(lines[0].split("\t")) if lines else ()
    if header != COLUMNS:
        raise _row_error(f"{source}:1", f"header must be {' '.join(COLUMNS)}, got {header}")
    table: dict[str, Language] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        language = _parse_row(line.split("\t"), where)
        if language.code in table:
            raise _row_error(where, f"duplicate code {language.code!r}")
        table[language.code] = language
    if not table:
        raise _row_error(source, "no languages")
    return table


@functools.cache
def _table() -> dict[str, Language]:
    # importlib.resources finds the file inside an installed wheel as well as in a checkout.
    resource = files("mdeberta") / "resources" / TABLE_NAME
    return parse_language_table(resource.read_text(encoding="utf-8"), str(resource))


# lookups


def all_languages() -> list[Language]:
    """Every CC-100 language, in file-name order."""
    return list(_table().values())


def canonical_code(code: str) -> str:
    """The CC-100 code for ``code`` (a CC-100 code or an alias such as ``zh``)."""
    code = ALIASES.get(code, code)
    if code not in _table():
        raise UnknownLanguageError(_unknown_message(code))
    return code


def code_from_iso639_3(code: str) -> str | None:
    """The CC-100 code of an ISO 639-3 code (``deu`` -> ``de``, ``cmn`` -> ``zh-Hans``), of a
    CC-100 code or alias itself, or None when the registry has no such language."""
    if code in INDIVIDUAL_CODES:
        return INDIVIDUAL_CODES[code]
    if ALIASES.get(code, code) in _table():
        return ALIASES.get(code, code)
    return next((lang.code for lang in _table().values() if lang.iso639_3 == code), None)


def get_language(code: str) -> Language:
    """The registry entry for a CC-100 code (or alias); UnknownLanguageError suggests others."""
    return _table()[canonical_code(code)]


def scripts_of(code: str) -> tuple[str, ...]:
    """ISO 15924 codes of the scripts ``code`` is written in, main script first."""
    return get_language(code).scripts


def preset(name: str) -> tuple[str, ...]:
    """The CC-100 codes of a preset: all, cc100, xlmr or xnli."""
    every = tuple(_table())
    presets = {
        "all": every,
        "cc100": every,
        "xlmr": XLMR_LANGUAGES,
        "xnli": tuple(ALIASES.get(c, c) for c in XNLI_LANGUAGES),
    }
    if name not in presets:
        raise UnknownLanguageError(f"unknown preset {name!r}; presets: {', '.join(presets)}")
    return presets[name]


def _tokens(spec: str | Sequence[str]) -> list[str]:
    items = [spec] if isinstance(spec, str) else list(spec)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"language codes must be strings, got {item!r}")
    return [token.strip() for item in items for token in item.split(",") if token.strip()]


def resolve_languages(spec: str | Sequence[str] | None = None) -> list[str]:
    """CC-100 codes for a spec: None, a preset, "en,de,zh" or a list; duplicates dropped.

    Presets and codes can be mixed ("xnli,ja"); order is kept (first occurrence wins) and every
    code is validated, so a typo fails here rather than after hours of pipeline work.
    """
    if spec is None:
        return list(_table())
    tokens = _tokens(spec)
    if not tokens:
        raise ValueError(
            f"no languages given in {spec!r}; use a preset ({', '.join(PRESET_NAMES)})"
        )
    codes: dict[str, None] = {}
    for token in tokens:
        lowered = token.lower()
        expanded = preset(lowered) if lowered in PRESET_NAMES else (canonical_code(token),)
        codes.update(dict.fromkeys(expanded))
    return list(codes)


# suggestions for unknown codes


def _search_keys() -> dict[str, list[str]]:
    """Lower-cased code, name and ISO codes -> the CC-100 codes they belong to."""
    keys: dict[str, list[str]] = {}
    for language in _table().values():
        names = (language.code, language.name, language.iso639_3, language.iso639_1 or "")
        for key in filter(None, names):
            codes = keys.setdefault(key.lower(), [])
            if language.code not in codes:
                codes.append(language.code)
    for alias, target in ALIASES.items():
        keys.setdefault(alias, [target])
    return keys


def suggest_codes(query: str, limit: int = 5) -> list[str]:
    """CC-100 codes closest to ``query``, matching codes, English names and ISO 639 codes."""
    keys = _search_keys()
    wanted = query.strip().lower()
    if wanted in keys:  # "eng", "English", "EN": one unambiguous answer beats fuzzy noise
        return keys[wanted][:limit]
    close = difflib.get_close_matches(wanted, list(keys), n=limit, cutoff=0.6)
    return list(dict.fromkeys(code for key in close for code in keys[key]))[:limit]


def _unknown_message(code: str) -> str:
    table = _table()
    suggestions = [f"{c} ({table[c].name})" for c in suggest_codes(code)]
    hint = f"did you mean {', '.join(suggestions)}?" if suggestions else "no close match."
    return (
        f"unknown language code {code!r}: {hint} Codes are CC-100 file names (116, listed in "
        f"docs/languages.md); presets: {', '.join(PRESET_NAMES)}"
    )
