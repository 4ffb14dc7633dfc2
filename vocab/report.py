"""report.json and report.md: how well the vocabulary fits each language.

Per language, on paragraphs from the start of the clean corpus: pieces per word (per character
where the registry says words are not space-separated), the unknown rate and the byte-fallback rate
(shares of all pieces). For the vocabulary: the share of its pieces per script (a piece's script is
that of its letters; pieces of digits, punctuation and symbols only count as "Zyyy", common).
`compare` puts another SentencePiece model's numbers beside ours.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator

import numpy as np

from mdeberta import io
from mdeberta.clean_corpus import Part
from mdeberta.languages import UNICODE_SCRIPT_NAMES, UnknownLanguageError, get_language
from mdeberta.pipelines.paragraphs import read_paragraphs
from mdeberta.vocab.tokenizer import load_processor

COMMON = "Zyyy"  # ISO 15924: undetermined / common script
BYTE = "bytes"  # byte-fallback pieces
SPECIAL = "special"  # control and unknown pieces


@functools.cache
def _script_patterns():
    import regex

    return [
        (code, regex.compile(rf"\p{{Script={name}}}"))
        for code, name in UNICODE_SCRIPT_NAMES.items()
    ]


@functools.cache
def char_script(char: str) -> str:
    """ISO 15924 code of a character among the registry's scripts, else Zyyy."""
    for code, pattern in _script_patterns():
        if pattern.match(char):
            return code
    return COMMON


def piece_script(piece: str) -> str:
    """The script of most of a piece's non-common characters (Zyyy when it has none)."""
    counts = Counter(s for s in map(char_script, piece) if s != COMMON)
    return counts.most_common(1)[0][0] if counts else COMMON


def script_shares(sp) -> dict[str, float]:
    """Share of the model's pieces per script, byte pieces and special pieces."""
    counts: Counter[str] = Counter()
    for i in range(sp.get_piece_size()):
        if sp.is_byte(i):
            counts[BYTE] += 1
        elif sp.is_control(i) or sp.is_unknown(i):
            counts[SPECIAL] += 1
        else:
            counts[piece_script(sp.id_to_piece(i).replace("▁", ""))] += 1
    total = sum(counts.values())
    return {k: v / total for k, v in sorted(counts.items())}


def language_metrics(sp, paragraphs: Iterable[str], space_separated: bool) -> dict:
    """Pieces per word (or per character), unknown and byte-fallback rates of `sp` on the text.

    Encodes a batch of paragraphs per call and counts ids against flags computed once per model:
    a per-paragraph, per-id loop made the shard job's vocabulary check ~4 CPU-s on 86 languages.
    """
    unknown_or_byte = _id_flags(sp)
    n_paragraphs = pieces = unknown = byte = words = chars = 0
    batch: list[str] = []
    for text in itertools.chain(paragraphs, [None]):
        if text is not None:
            batch.append(text)
            if len(batch) < _ENCODE_BATCH:
                continue
        if batch:
            encoded = sp.encode(batch, num_threads=1)
            ids = np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int64)
            unknown += int(unknown_or_byte[0][ids].sum())
            byte += int(unknown_or_byte[1][ids].sum())
            pieces += len(ids)
            n_paragraphs += len(batch)
            for paragraph in batch:
                tokens = paragraph.split()  # str.split() splits where str.isspace() is true
                words += len(tokens)
                chars += sum(map(len, tokens))
            batch = []
    unit, units = ("word", words) if space_separated else ("char", chars)
    return {
        "paragraphs": n_paragraphs,
        "pieces": pieces,
        "unit": unit,
        "units": units,
        "pieces_per_unit": pieces / units if units else None,
        "unk_rate": unknown / pieces if pieces else None,
        "byte_fallback_rate": byte / pieces if pieces else None,
    }


_ENCODE_BATCH = 256


@functools.lru_cache(maxsize=4)
def _id_flags(sp) -> tuple[np.ndarray, np.ndarray]:
    """(is unknown, is byte) for every id of the model."""
    size = sp.get_piece_size()
    unknown = np.array([sp.is_unknown(i) for i in range(size)], dtype=bool)
    byte = np.array([sp.is_byte(i) for i in range(size)], dtype=bool)
    return unknown, byte


def space_separated(lang: str) -> bool:
    try:
        return get_language(lang).space_separated
    except UnknownLanguageError:
        return True


def report_paragraphs(parts: Iterable[Part], limit: int) -> Iterator[str]:
    """The first `limit` paragraphs of these clean-corpus parts (one language's), in file order."""
    count = 0
    for part in parts:
        for _, _, paragraph in read_paragraphs(part):
            if count >= limit:
                return
            count += 1
            yield paragraph


def build_report(
    model: bytes, texts: dict[str, list[str]], compare: bytes | None = None, compare_name=None
) -> dict:
    """The report of `model` (and `compare`) on {lang: paragraphs}."""
    ours = load_processor(model, "spm.model")
    other = load_processor(compare, str(compare_name)) if compare is not None else None
    languages = {}
    for lang, paragraphs in sorted(texts.items()):
        spaced = space_separated(lang)
        row = language_metrics(ours, paragraphs, spaced)
        if other is not None:
            row["compare"] = language_metrics(other, paragraphs, spaced)
        languages[lang] = row
    report = {
        "vocab_pieces": ours.get_piece_size(),
        "languages": languages,
        "scripts": script_shares(ours),
    }
    if other is not None:
        report["compare"] = {
            "model": compare_name,
            "vocab_pieces": other.get_piece_size(),
            "scripts": script_shares(other),
        }
    return report


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _percent(value) -> str:
    return "n/a" if value is None else f"{value * 100:.3f}"


def _cells(m: dict) -> list[str]:
    return [
        f"{_fmt(m['pieces_per_unit'], '.3f')} / {m['unit']}",
        _percent(m["unk_rate"]),
        _percent(m["byte_fallback_rate"]),
    ]


def report_markdown(report: dict) -> str:
    compare = report.get("compare")
    head = ["language", "paragraphs", "pieces per unit", "unk %", "byte %"]
    if compare:
        head += ["compare: pieces per unit", "unk %", "byte %"]
    lines = [
        "# Vocabulary report",
        "",
        f"{report['vocab_pieces']:,} SentencePiece pieces (+ [MASK])."
        + (f" Compared with {compare['model']} ({compare['vocab_pieces']:,})." if compare else ""),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for lang, m in report["languages"].items():
        cells = [lang, str(m["paragraphs"]), *_cells(m)]
        if compare:
            cells += _cells(m["compare"])
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Share of the vocabulary per script", "", "| script | share % |", "|---|---|"]
    if compare:
        lines[-2:] = ["| script | share % | compare % |", "|---|---|---|"]
    scripts = sorted(set(report["scripts"]) | set(compare["scripts"] if compare else ()))
    for s in scripts:
        cells = [s, f"{report['scripts'].get(s, 0) * 100:.2f}"]
        if compare:
            cells.append(f"{compare['scripts'].get(s, 0) * 100:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(out_dir: str, report: dict) -> None:
    io.write_json(io.join(out_dir, "report.json"), report)
    io.write_text(io.join(out_dir, "report.md"), report_markdown(report))
