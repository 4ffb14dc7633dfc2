"""report.json and report.md of an extended vocabulary: what the extension changes, per language.

For each language of the corpus the pieces were learnt from ("new") and of the check corpus of
base languages ("check"), on paragraphs from the start of the corpus: vocab.report's metrics under
the base and under the extended model (pieces per word, or per character where words are not
space-separated; unknown and byte-fallback rates), the relative change of pieces per unit, the
share of paragraphs whose ids changed, the share that use a new piece, and how many changed
without using one (0 unless two segmentations tie exactly: see vocab/extend_pieces.py).
"""

from __future__ import annotations

from mdeberta import io
from mdeberta.vocab.report import language_metrics, script_shares, space_separated


def _processor(model: bytes):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=model)


def language_change(base_sp, ext_sp, paragraphs: list[str], lang: str, first_new: int) -> dict:
    """Before/after metrics of one language and the shares of its paragraphs that changed."""
    spaced = space_separated(lang)
    before = language_metrics(base_sp, paragraphs, spaced)
    after = language_metrics(ext_sp, paragraphs, spaced)
    changed = with_new = changed_without_new = 0
    for old, new in zip(base_sp.encode(paragraphs), ext_sp.encode(paragraphs), strict=True):
        uses_new = any(i >= first_new for i in new)
        changed += old != new
        with_new += uses_new
        changed_without_new += old != new and not uses_new
    n = len(paragraphs)
    was, now = before["pieces_per_unit"], after["pieces_per_unit"]
    return {
        "before": before,
        "after": after,
        "pieces_per_unit_change": now / was - 1 if was and now is not None else None,
        "changed_lines": changed / n if n else None,
        "lines_with_new_pieces": with_new / n if n else None,
        "changed_without_new_pieces": changed_without_new,
    }


def change_report(
    base: bytes, extended: bytes, first_new: int, texts: dict[str, dict[str, list[str]]]
) -> dict:
    """The report of `extended` against `base` on {role: {lang: paragraphs}}."""
    base_sp, ext_sp = _processor(base), _processor(extended)
    return {
        "vocab_pieces": ext_sp.get_piece_size(),
        "base_pieces": base_sp.get_piece_size(),
        "first_new_id": first_new,
        "languages": {
            role: {
                lang: language_change(base_sp, ext_sp, paragraphs, lang, first_new)
                for lang, paragraphs in sorted(by_lang.items())
            }
            for role, by_lang in texts.items()
        },
        "scripts": script_shares(ext_sp),
    }


def _cell(value, spec: str, scale: float = 1.0) -> str:
    return "n/a" if value is None else format(value * scale, spec)


def report_markdown(report: dict, base: str) -> str:
    lines = [
        "# Extended vocabulary report",
        "",
        f"{report['base_pieces']:,} pieces of {base}, then [MASK] and the new pieces: "
        f"{report['vocab_pieces']:,} SentencePiece pieces; new ids from {report['first_new_id']}.",
        "",
        "| corpus | language | paragraphs | pieces per unit: before | after | change % "
        "| lines changed % | lines with new pieces % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for role, by_lang in report["languages"].items():
        for lang, row in by_lang.items():
            before, after = row["before"], row["after"]
            cells = [
                role,
                lang,
                str(before["paragraphs"]),
                f"{_cell(before['pieces_per_unit'], '.3f')} / {before['unit']}",
                _cell(after["pieces_per_unit"], ".3f"),
                _cell(row["pieces_per_unit_change"], "+.1f", 100),
                _cell(row["changed_lines"], ".2f", 100),
                _cell(row["lines_with_new_pieces"], ".2f", 100),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_change_report(out_dir: str, report: dict, base: str) -> None:
    io.write_json(io.join(out_dir, "report.json"), report)
    io.write_text(io.join(out_dir, "report.md"), report_markdown(report, base))
