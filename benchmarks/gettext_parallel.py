"""Real parallel sentences from the gettext catalogues a Debian system installs, for retrieval.

    python benchmarks/gettext_parallel.py --output parallel/ --languages de,fr,ja --pairs 1000

Every `LC_MESSAGES/*.mo` under /usr/share/locale holds a program's English messages (msgid) and a
translator's version of each (msgstr): aligned English/translation pairs written by people, in
dozens of languages. This script reads chosen catalogues (domains) and writes a LASER/Tatoeba
directory (tatoeba.{xx}-eng.{xx} and tatoeba.{xx}-eng.eng) that `mdeberta eval retrieval` reads.

Kept: single-line messages of 4 to 40 English words whose translation differs from the English;
plural entries give their singular pair; message contexts are dropped. A seeded sample of at most
--pairs per language (Tatoeba's 1000 by default), after the retrieval loader's own rules (no empty
side, no repeated sentence) have been applied, so every written pair is scored.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import re
import struct
import unicodedata
from collections.abc import Iterable

LOCALE_ROOT = "/usr/share/locale"
# GNU and Debian command-line tools: plain sentences, in many languages, and not the programs whose
# messages fill most of the training text (git, PostgreSQL, GTK, GnuPG, ...)
HELD_OUT_DOMAINS = (
    "adduser", "bash", "coreutils", "diffutils", "findutils", "grep", "make", "man-db",
    "procps-ng", "psmisc", "sed", "shadow", "tar", "wget", "xz",
)  # fmt: skip
# locale directory names whose CC-100 code is not their first component
LOCALE_CODES = {"zh_CN": "zh-Hans", "zh_TW": "zh-Hant", "nb": "no", "sr@latin": None}
_PLACEHOLDER = re.compile(r"%(\d+\$)?[-+ #0]*\d*(\.\d+)?[hlLqjzt]*[a-zA-Z%]|\{\w*\}|\$\{?\w+\}?")


def read_mo(path: str) -> dict[str, str]:
    """msgid -> msgstr of a compiled catalogue (singular forms; contexts dropped; untranslated
    and undecodable entries left out), decoded with the charset its header names."""
    with open(path, "rb") as f:
        data = f.read()
    order = "<" if struct.unpack("<I", data[:4])[0] == 0x950412DE else ">"
    _, count, ids_at, strs_at = struct.unpack(order + "4I", data[4:20])

    def entry(table: int, i: int) -> bytes:
        length, offset = struct.unpack(order + "2I", data[table + 8 * i : table + 8 * i + 8])
        return data[offset : offset + length]

    raw = [(entry(ids_at, i), entry(strs_at, i)) for i in range(count)]
    header = dict(raw).get(b"", b"")
    match = re.search(rb"charset=([\w-]+)", header)
    charset = match.group(1).decode() if match else "utf-8"
    catalogue = {}
    for msgid, msgstr in raw:
        if not msgid:
            continue
        try:
            english, translated = msgid.decode(charset), msgstr.decode(charset)
        except (UnicodeDecodeError, LookupError):
            continue
        english = english.split("\x04")[-1].split("\x00")[0]  # context, then the plural form
        translated = translated.split("\x00")[0]
        if translated:
            catalogue[english] = translated
    return catalogue


def locale_code(locale: str) -> str | None:
    """The CC-100 code of a locale directory (de, zh_CN, pt_BR...), None for a script variant."""
    from mdeberta.languages import code_from_iso639_3

    if locale in LOCALE_CODES:
        return LOCALE_CODES[locale]
    if "@" in locale or "_" in locale:  # en_GB, de_CH, ca@valencia: variants of another file
        return None
    return code_from_iso639_3(locale)


def catalogues(root: str = LOCALE_ROOT) -> dict[tuple[str, str], str]:
    """(CC-100 code, domain) -> .mo path, for every locale directory that maps to a code."""
    found = {}
    for path in sorted(glob.glob(os.path.join(root, "*", "LC_MESSAGES", "*.mo"))):
        code = locale_code(path.split(os.sep)[-3])
        if code is not None:
            found.setdefault((code, os.path.basename(path)[: -len(".mo")]), path)
    return found


def usable(english: str, translated: str) -> bool:
    english, translated = english.strip(), translated.strip()
    return (
        "\n" not in english
        and "\n" not in translated
        and 4 <= len(english.split()) <= 40
        and translated != english
    )


def normalise(text: str) -> str:
    """A loose form for overlap checks: NFKC, case-folded, placeholders, digits, punctuation and
    spaces removed (so "Cannot open %s." and "cannot open '%d'" meet)."""
    text = _PLACEHOLDER.sub(" ", unicodedata.normalize("NFKC", text)).casefold()
    return "".join(ch for ch in text if ch.isalpha())


def parallel_pairs(
    languages: Iterable[str], domains: Iterable[str], pairs: int, seed: int, root: str = LOCALE_ROOT
) -> dict[str, list[tuple[str, str]]]:
    """A seeded sample of at most `pairs` usable (English, translation) pairs per language,
    following the retrieval loader's rules (each English sentence and each translation once)."""
    found = catalogues(root)
    out = {}
    for lang in languages:
        seen_en, seen_xx, kept = set(), set(), []
        for domain in sorted(domains):
            path = found.get((lang, domain))
            for english, translated in (read_mo(path) if path else {}).items():
                english, translated = english.strip(), translated.strip()
                if (
                    usable(english, translated)
                    and english not in seen_en
                    and translated not in seen_xx
                ):
                    seen_en.add(english)
                    seen_xx.add(translated)
                    kept.append((english, translated))
        random.Random(f"{seed}:{lang}").shuffle(kept)
        out[lang] = kept[:pairs]
    return out


def english_messages(domains_left_out: Iterable[str], root: str = LOCALE_ROOT) -> list[str]:
    """Every distinct English message (msgid lines) of the catalogues outside `domains_left_out`,
    in catalogue order: monolingual English text of the same kind as the translated corpus."""
    skip, seen, lines = set(domains_left_out), set(), []
    for (_, domain), path in sorted(catalogues(root).items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if domain in skip:
            continue
        for english in read_mo(path):
            for line in english.split("\n"):
                line = line.strip()
                if line and line not in seen:
                    seen.add(line)
                    lines.append(line)
    return lines


def write_laser(output: str, pairs: dict[str, list[tuple[str, str]]]) -> None:
    os.makedirs(output, exist_ok=True)
    for lang, rows in pairs.items():
        with open(os.path.join(output, f"tatoeba.{lang}-eng.{lang}"), "w", encoding="utf-8") as f:
            f.writelines(f"{xx}\n" for _, xx in rows)
        with open(os.path.join(output, f"tatoeba.{lang}-eng.eng"), "w", encoding="utf-8") as f:
            f.writelines(f"{en}\n" for en, _ in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="LASER-layout directory to write")
    parser.add_argument("--languages", required=True, help="CC-100 codes, comma-separated")
    parser.add_argument("--domains", default=",".join(HELD_OUT_DOMAINS), help="catalogue names")
    parser.add_argument("--pairs", type=int, default=1000, help="most pairs per language")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    languages = [x.strip() for x in args.languages.split(",") if x.strip()]
    pairs = parallel_pairs(languages, args.domains.split(","), args.pairs, args.seed)
    write_laser(args.output, pairs)
    print(json.dumps({lang: len(rows) for lang, rows in pairs.items()}))


if __name__ == "__main__":
    main()
