"""The packaged sample corpus (mdeberta/resources/sample/): CC-100 layout, language and script
coverage, well-formed documents, and exactly the deliberate defects its README lists."""

import lzma
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import cache

import pytest
import regex

from mdeberta import resources_path
from mdeberta.languages import UNICODE_SCRIPT_NAMES, get_language, preset

SAMPLE = resources_path("sample")
README = SAMPLE / "README.md"

# Languages whose text packs more meaning per character get the README's lower length floors.
DENSE_DOCS = {"zh-Hans", "ja", "ko", "th"}  # documents >= 150 characters instead of 300
DENSE_PARAGRAPHS = {"zh-Hans", "ja"}  # paragraphs 30-150 characters instead of 50-400

# Defects that make a whole document abnormal; the others spoil one paragraph of a normal document.
DOCUMENT_DEFECTS = {"duplicate-document", "tiny-document", "repeated-paragraphs"}
PARAGRAPH_DEFECTS = {"boilerplate", "wrong-script"}

ROW = r"^\| ([\w-]+)\.txt\.xz \| "
DEFECT_ROW = regex.compile(ROW + r"([\d, ]+) \| ([a-z-]+) \| (.+) \|$", regex.M)
COUNT_ROW = regex.compile(ROW + r"([^|]+) \| ([^|]+) \| (\d+) \| (\d+) \| (\d+) \|$", regex.M)


@dataclass(frozen=True)
class Defect:
    code: str
    docs: tuple[int, ...]  # 1-based document numbers, as the README writes them
    kind: str
    detail: str


# helpers


def codes() -> list[str]:
    return sorted(p.name.removesuffix(".txt.xz") for p in SAMPLE.glob("*.txt.xz"))


@cache
def raw_text(code: str) -> str:
    return lzma.decompress((SAMPLE / f"{code}.txt.xz").read_bytes()).decode("utf-8")


@cache
def documents(code: str) -> list[list[str]]:
    return [doc.split("\n") for doc in raw_text(code).rstrip("\n").split("\n\n")]


@cache
def defects() -> list[Defect]:
    rows = DEFECT_ROW.findall(README.read_text(encoding="utf-8"))
    return [
        Defect(code, tuple(int(n) for n in docs.split(",")), kind, detail)
        for code, docs, kind, detail in rows
    ]


def defects_of(code: str, kinds: set[str]) -> list[Defect]:
    return [d for d in defects() if d.code == code and d.kind in kinds]


def listed_paragraphs(code: str) -> set[tuple[int, int]]:
    """(document, paragraph) pairs, 1-based, that a paragraph-level defect names."""
    found = set()
    for d in defects_of(code, PARAGRAPH_DEFECTS):
        paragraph = int(re.search(r"paragraph (\d+)", d.detail).group(1))
        found |= {(doc, paragraph) for doc in d.docs}
    return found


def normal_documents(code: str) -> dict[int, list[str]]:
    """Documents not listed as document-level defects, by 1-based number."""
    abnormal = {n for d in defects_of(code, DOCUMENT_DEFECTS) for n in d.docs}
    docs = documents(code)
    return {n: docs[n - 1] for n in range(1, len(docs) + 1) if n not in abnormal}


def content(code: str) -> dict[int, list[str]]:
    """Normal documents without the paragraphs that boilerplate/wrong-script defects name."""
    skip = listed_paragraphs(code)
    return {
        n: [p for i, p in enumerate(doc, 1) if (n, i) not in skip]
        for n, doc in normal_documents(code).items()
    }


SCRIPTS = sorted(set(UNICODE_SCRIPT_NAMES.values()))
SCRIPT_RE = {name: regex.compile(rf"\p{{Script={name}}}") for name in SCRIPTS}


def script_counts(text: str) -> Counter:
    return Counter({s: len(r.findall(text)) for s, r in SCRIPT_RE.items() if r.search(text)})


def dominant_script(text: str) -> str:
    return script_counts(text).most_common(1)[0][0]


# layout and coverage


@pytest.mark.parametrize("code", codes())
def test_file_decompresses_in_cc100_layout(code):
    text = raw_text(code)
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert not text.startswith("\n") and "\n\n\n" not in text and "\r" not in text
    assert unicodedata.is_normalized("NFC", text)
    for line in text.split("\n")[:-1]:
        assert line == line.strip(), f"{code}: stray whitespace in {line!r}"
    assert get_language(code).code == code, "file names are CC-100 codes"


def test_languages_cover_xnli_and_more():
    found = set(codes())
    assert len(found) >= 20
    assert set(preset("xnli")) <= found, f"missing XNLI: {set(preset('xnli')) - found}"


def test_corpus_spans_at_least_seven_scripts():
    scripts = {
        dominant_script(p) for code in codes() for doc in content(code).values() for p in doc
    }
    assert len(scripts) >= 7, scripts


# documents


@pytest.mark.parametrize("code", codes())
def test_normal_documents_are_well_formed(code):
    doc_floor = 150 if code in DENSE_DOCS else 300
    low, high = (30, 150) if code in DENSE_PARAGRAPHS else (50, 400)
    docs = normal_documents(code)
    assert len(docs) >= 20
    for n, doc in docs.items():
        assert 2 <= len(doc) <= 4, f"{code} document {n}: {len(doc)} paragraphs"
    for n, doc in content(code).items():
        assert sum(map(len, doc)) >= doc_floor, f"{code} document {n} too short"
        for p in doc:
            assert low <= len(p) <= high, f"{code} document {n}: {len(p)} characters: {p!r}"


@pytest.mark.parametrize("code", codes())
def test_normal_paragraphs_use_the_languages_own_scripts(code):
    own = set(get_language(code).unicode_scripts)
    for n, doc in content(code).items():
        for p in doc:
            counts = script_counts(p)
            share = sum(counts[s] for s in own) / sum(counts.values())
            assert share >= 0.95, f"{code} document {n}: {dict(counts)} in {p!r}"


@pytest.mark.parametrize("code", codes())
def test_no_repetition_beyond_the_listed_defects(code):
    docs = documents(code)
    listed = {n for d in defects_of(code, {"duplicate-document"}) for n in d.docs}
    distinct = [tuple(doc) for n, doc in enumerate(docs, 1) if n not in listed]
    assert len(set(distinct)) == len(distinct), f"{code}: unlisted duplicate document"

    boilerplate = {docs[n - 1][i - 1] for n, i in listed_paragraphs(code)}
    repeated = {n for d in defects_of(code, {"repeated-paragraphs"}) for n in d.docs}
    seen: Counter = Counter()
    for n, doc in enumerate(docs, 1):
        if n in listed:
            continue
        assert n in repeated or len(set(doc)) == len(doc), f"{code} document {n} repeats itself"
        seen.update(set(doc))
    shared = {p for p, k in seen.items() if k > 1} - boilerplate
    assert not shared, f"{code}: unlisted paragraphs in several documents: {shared}"


# the deliberate defects


def check_duplicate(d: Defect, docs: list[list[str]]) -> None:
    original = int(re.search(r"copy of document (\d+)", d.detail).group(1))
    for n in d.docs:
        assert original < n and docs[n - 1] == docs[original - 1]


def check_boilerplate(d: Defect, docs: list[list[str]]) -> None:
    paragraph = int(re.search(r"paragraph (\d+)", d.detail).group(1))
    line = re.search(r"`([^`]+)`", d.detail).group(1)
    assert len(d.docs) >= 3, "boilerplate repeats across several documents"
    holders = {n for n, doc in enumerate(docs, 1) if line in doc}
    assert holders == set(d.docs)
    assert all(docs[n - 1][paragraph - 1] == line for n in d.docs)


def check_wrong_script(d: Defect, docs: list[list[str]]) -> None:
    match = re.search(r"paragraph (\d+) is (\w+)", d.detail)
    paragraph, script = int(match.group(1)), match.group(2)
    assert script not in get_language(d.code).unicode_scripts
    for n in d.docs:
        assert dominant_script(docs[n - 1][paragraph - 1]) == script
        assert len(docs[n - 1]) <= 4


def check_tiny(d: Defect, docs: list[list[str]]) -> None:
    for n in d.docs:
        assert len(docs[n - 1]) == 1 and len(docs[n - 1][0]) < 40


def check_repeated(d: Defect, docs: list[list[str]]) -> None:
    for n in d.docs:
        assert len(set(docs[n - 1])) < len(docs[n - 1])


CHECKS = {
    "duplicate-document": check_duplicate,
    "boilerplate": check_boilerplate,
    "wrong-script": check_wrong_script,
    "tiny-document": check_tiny,
    "repeated-paragraphs": check_repeated,
}


@pytest.mark.parametrize("defect", defects(), ids=lambda d: f"{d.code}-{d.kind}-{d.docs[0]}")
def test_listed_defect_is_present(defect):
    assert defect.kind in CHECKS, f"unknown defect kind {defect.kind!r}"
    docs = documents(defect.code)
    assert all(1 <= n <= len(docs) for n in defect.docs)
    CHECKS[defect.kind](defect, docs)


def test_defects_cover_every_kind_and_stay_rare():
    languages_with = {kind: {d.code for d in defects() if d.kind == kind} for kind in CHECKS}
    assert len(languages_with["duplicate-document"]) >= 3
    assert all(languages_with.values()), languages_with
    for code in codes():
        spoiled = {n for d in defects() if d.code == code for n in d.docs}
        assert len(spoiled) <= 0.15 * len(documents(code)), f"{code}: too many defects"


def test_readme_counts_match_the_files():
    rows = {row[0]: row for row in COUNT_ROW.findall(README.read_text(encoding="utf-8"))}
    assert sorted(rows) == codes()
    for code, (_, _, scripts, docs, paragraphs, chars) in rows.items():
        assert int(docs) == len(documents(code))
        assert int(paragraphs) == sum(map(len, documents(code)))
        assert int(chars) == len(raw_text(code))
        assert scripts.strip() == ", ".join(get_language(code).unicode_scripts)
