"""XNLI reports: xnli.json (everything), xnli.md (our row beside the published ones), xnli.png.

The published rows are the zero-shot numbers of the microsoft/mdeberta-v3-base model card (train
on English, test on 15 languages; the card calls them "dev results", its XLM-R row equals the
XLM-R paper's test numbers). The card's averages are over all 15 languages; when a run evaluates
fewer, every average in the table is taken over the languages that run evaluated.
"""

from __future__ import annotations

import io as _io

from mdeberta import io

# the card's column order
CARD_ORDER = (
    "en", "fr", "es", "de", "el", "bg", "ru", "tr", "ar", "vi", "th", "zh", "hi", "sw", "ur",
)  # fmt: skip
PUBLISHED_SOURCE = "microsoft/mdeberta-v3-base model card (zero-shot, English training)"
PUBLISHED: dict[str, dict[str, float]] = {
    "mDeBERTa-v3-base": dict(zip(CARD_ORDER, (
        88.2, 82.6, 84.4, 82.7, 82.3, 82.4, 80.8, 79.5, 78.5, 78.1, 76.4, 79.5, 75.9, 73.9, 72.4,
    ), strict=True)),
    "XLM-R base": dict(zip(CARD_ORDER, (
        85.8, 79.7, 80.7, 78.7, 77.5, 79.6, 78.1, 74.2, 73.8, 76.5, 74.6, 76.7, 72.4, 66.5, 68.3,
    ), strict=True)),
}  # fmt: skip
PUBLISHED_AVERAGE = {"mDeBERTa-v3-base": 79.8, "XLM-R base": 76.2}  # as printed on the card


def ordered(languages) -> list[str]:
    """Languages in the card's order, others after them alphabetically."""
    rank = {lang: i for i, lang in enumerate(CARD_ORDER)}
    return sorted(languages, key=lambda lang: (rank.get(lang, len(rank)), lang))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def table_rows(results: dict) -> list[tuple[str, float, dict[str, float | None]]]:
    """(name, average, {lang: accuracy in %}) for our run and each published model."""
    langs = ordered(results["accuracy"])
    ours = {lang: 100 * results["accuracy"][lang] for lang in langs}
    rows = [(f"ours: {results['model']['name']}", mean(ours.values()), ours)]
    for name, scores in PUBLISHED.items():
        cells = {lang: scores.get(lang) for lang in langs}
        known = [v for v in cells.values() if v is not None]
        rows.append((f"{name} (published)", mean(known), cells))
    return rows


def markdown(results: dict) -> str:
    langs = ordered(results["accuracy"])
    head = ["model", "avg", *langs]
    source = {role: (s or {}).get("source", "-") for role, s in results["data"].items()}
    lines = [
        "# XNLI zero-shot cross-lingual accuracy (%)",
        "",
        f"Model `{results['model']['path']}` ({results['model']['backend']} backend); "
        f"fine-tuned on `{source.get('train', '-')}`, selected on `{source.get('dev', '-')}`, "
        f"tested on `{source['test']}`.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, avg, cells in table_rows(results):
        values = ["–" if cells[lang] is None else f"{cells[lang]:.1f}" for lang in langs]
        lines.append(f"| {name} | {avg:.1f} | " + " | ".join(values) + " |")
    lines += ["", _notes(results, langs)]
    return "\n".join(lines) + "\n"


def _notes(results: dict, langs: list[str]) -> str:
    notes = [f"Published rows: {PUBLISHED_SOURCE}."]
    if set(langs) != set(CARD_ORDER):
        printed = ", ".join(f"{k} {v}" for k, v in PUBLISHED_AVERAGE.items())
        notes.append(
            f"Averages are over the {len(langs)} languages evaluated (card, all 15: {printed})."
        )
    hp = results.get("hyperparameters") or {}
    if not results.get("eval_only"):
        notes.append(
            f"Recipe: {hp.get('epochs')} epochs, lr {hp.get('lr')}, batch {hp.get('batch_size')}, "
            f"max length {hp.get('max_length')}, warm-up {hp.get('warmup_steps_used')} of "
            f"{hp.get('steps')} steps, seed {results.get('seed')}; best English dev step "
            f"{results['selection'].get('best_step')}."
        )
    for role, summary in sorted(results["data"].items()):
        if summary and summary.get("skipped"):
            notes.append(f"Skipped {role} rows: {summary['skipped']}.")
    return "\n".join(f"- {note}" for note in notes)


CHANCE = 100 / 3  # three balanced classes


def plot_png(results: dict) -> bytes:
    """xnli.png: the figure of xnli_figure."""
    return figure_png(xnli_figure(results))


def xnli_figure(results: dict):
    """Grouped bars per language (card order, then avg): ours and the published models, with
    the chance line (33.3%)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    langs = ordered(results["accuracy"])
    rows = table_rows(results)
    fig = Figure(figsize=(max(6.0, 0.75 * (len(langs) + 1)), 4.5), dpi=120)
    FigureCanvasAgg(fig)  # attaches the Agg canvas: no pyplot, no global backend change
    ax = fig.add_subplot()
    width = 0.8 / len(rows)
    for r, (name, avg, cells) in enumerate(rows):
        xs = [i + (r - (len(rows) - 1) / 2) * width for i in range(len(langs) + 1)]
        ys = [float("nan") if cells[lang] is None else cells[lang] for lang in langs] + [avg]
        ax.bar(xs, ys, width, label=name)
    ax.axhline(CHANCE, linestyle="--", color="gray", linewidth=1, label="chance (33.3%)")
    ax.set_xticks(range(len(langs) + 1), [*langs, "avg"])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("XNLI zero-shot (train on English)")
    ax.grid(axis="y", alpha=0.3)
    # below the axes: inside, it would hide the bars
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    fig.tight_layout()
    return fig


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes, without the library version in its metadata (so the same
    results give the same file)."""
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def write_result_files(out_dir: str, stem: str, results: dict, table: str, png: bytes) -> dict:
    """{stem}.json, {stem}.md and {stem}.png (each written whole under a temporary name); return
    {name: {sha256, bytes}} for the manifest."""
    io.write_json(io.join(out_dir, f"{stem}.json"), results)
    io.write_text(io.join(out_dir, f"{stem}.md"), table)
    with io.atomic_write(io.join(out_dir, f"{stem}.png"), "wb", compression=None) as f:
        f.write(png)
    urls = {name: io.join(out_dir, name) for name in (f"{stem}.{x}" for x in ("json", "md", "png"))}
    return {n: {"sha256": io.sha256_file(u), "bytes": io.file_size(u)} for n, u in urls.items()}


def write_reports(out_dir: str, results: dict) -> dict[str, dict]:
    """Write xnli.json, xnli.md and xnli.png; return {name: {sha256, bytes}} for the manifest."""
    return write_result_files(out_dir, "xnli", results, markdown(results), plot_png(results))
