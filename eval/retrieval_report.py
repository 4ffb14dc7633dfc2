"""retrieval.json, retrieval.md and retrieval.png: the model and its baselines side by side."""

from __future__ import annotations

import os

from mdeberta.config import config_to_dict
from mdeberta.eval.report import figure_png, mean, write_result_files

FORMAT_VERSION = 1
NAMES = {"model": "model", "random_init": "random init", "lexical": "lexical (TF-IDF)"}


def results_document(cfg, encoder, depth: int, layer: int, layers: list[int], per_language: dict):
    """The content of retrieval.json: per language the chosen layer's scores of every system (and
    with all_layers the mean accuracy of each layer), averages over languages."""
    languages = {}
    for lang, r in per_language.items():
        row = {k: r[k] for k in ("pairs", "chance", "skipped", "skipped_examples")}
        for system in ("model", "random_init"):
            if system in r:
                row[system] = r[system][layer]
        if "lexical" in r:
            row["lexical"] = r["lexical"]
        languages[lang] = row
    systems = [
        s for s in ("model", "random_init", "lexical") if s in next(iter(languages.values()))
    ]
    doc = {
        "format_version": FORMAT_VERSION,
        "model": {
            "path": cfg.model,
            "name": os.path.basename(cfg.model.rstrip("/")) or cfg.model,
            "backend": encoder.backend,
            "tokenizer": cfg.tokenizer or cfg.model,
            "depth": depth,
            "hidden_size": encoder.model.config.hidden_size,
        },
        "data": cfg.data,
        "protocol": {
            "layer": layer,
            "pooling": "mean over non-padding tokens"
            + (", [CLS]/[SEP] included" if cfg.pool_special else ", special tokens left out"),
            "similarity": "cosine",
            "metric": "top-1 accuracy, xx->en and en->xx, their mean; a tie counts as a miss",
            "max_length": cfg.max_length,
            "random_init_seed": cfg.seed,
        },
        "options": config_to_dict(cfg),
        "languages": languages,
        "average": {s: mean(row[s]["mean"] for row in languages.values()) for s in systems},
        "chance": mean(row["chance"] for row in languages.values()),
    }
    if len(layers) > 1:
        doc["layers"] = {
            system: [mean(r[system][k]["mean"] for r in per_language.values()) for k in layers]
            for system in ("model", "random_init")
            if system in next(iter(per_language.values()))
        }
        doc["layers_per_language"] = {
            lang: {s: [r[s][k]["mean"] for k in layers] for s in ("model", "random_init") if s in r}
            for lang, r in per_language.items()
        }
    return doc


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def markdown(results: dict) -> str:
    systems = list(results["average"])
    langs = results["languages"]
    head = ["language", "pairs", *[NAMES[s] for s in systems], "chance"]
    lines = [
        f"# Retrieval: {results['model']['name']}",
        "",
        f"Top-1 accuracy (%), mean of xx->en and en->xx, layer {results['protocol']['layer']} of "
        f"{results['model']['depth']}, {results['protocol']['pooling']}, cosine. Data: "
        f"`{results['data']}`.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for lang, row in langs.items():
        cells = [_pct(row[s]["mean"]) for s in systems]
        lines.append(
            f"| {lang} | {row['pairs']} | " + " | ".join(cells) + f" | {_pct(row['chance'])} |"
        )
    avg = [f"**{_pct(results['average'][s])}**" for s in systems]
    lines.append("| **average** | | " + " | ".join(avg) + f" | {_pct(results['chance'])} |")
    lines += ["", "Both directions (xx->en / en->xx):", ""]
    for lang, row in langs.items():
        parts = [
            f"{NAMES[s]} {_pct(row[s]['xx_to_en'])}/{_pct(row[s]['en_to_xx'])}" for s in systems
        ]
        lines.append(f"- {lang}: " + ", ".join(parts))
    if "layers" in results:
        lines += ["", "Average top-1 (%) by layer (0 = embeddings):", ""]
        header = ["layer", *[NAMES[s] for s in results["layers"]]]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for k in range(len(next(iter(results["layers"].values())))):
            cells = [_pct(v[k]) for v in results["layers"].values()]
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
    skipped = {lang: row["skipped"] for lang, row in langs.items() if row["skipped"]}
    if skipped:
        lines += ["", f"Skipped pairs (counted, not scored): {skipped}."]
    verdict = verdict_line(results)
    if verdict:
        lines += ["", verdict]
    return "\n".join(lines) + "\n"


def verdict_line(results: dict) -> str:
    """One plain sentence on whether the model beats its random initialisation."""
    avg = results["average"]
    if "random_init" not in avg:
        return ""
    gain = 100 * (avg["model"] - avg["random_init"])
    if gain > 0:
        return f"The model beats its random initialisation by {gain:.1f} points."
    return (
        f"The model does NOT beat its random initialisation ({-gain:.1f} points behind): "
        "pretraining has not (yet) produced representations that align translations."
    )


def plot_png(results: dict) -> bytes:
    """Bars per language (and avg) for every system; with all_layers a second panel of the
    average accuracy by layer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    langs = list(results["languages"])
    systems = list(results["average"])
    panels = 2 if "layers" in results else 1
    fig = Figure(figsize=(max(6.0, 0.6 * (len(langs) + 1)) + 4 * (panels - 1), 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, panels, 1)
    width = 0.8 / len(systems)
    for r, system in enumerate(systems):
        xs = [i + (r - (len(systems) - 1) / 2) * width for i in range(len(langs) + 1)]
        ys = [100 * results["languages"][x][system]["mean"] for x in langs]
        ax.bar(xs, [*ys, 100 * results["average"][system]], width, label=NAMES[system])
    ax.axhline(100 * results["chance"], color="gray", linestyle=":", label="chance")
    ax.set_xticks(range(len(langs) + 1), [*langs, "avg"], rotation=45 if len(langs) > 12 else 0)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Retrieval, layer {results['protocol']['layer']}: {results['model']['name']}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    if panels == 2:
        ax2 = fig.add_subplot(1, 2, 2)
        for system, values in results["layers"].items():
            ax2.plot(range(len(values)), [100 * v for v in values], marker="o", label=NAMES[system])
        if "lexical" in results["average"]:
            lexical = 100 * results["average"]["lexical"]
            ax2.axhline(lexical, color="C2", linestyle="--", label=NAMES["lexical"])
        ax2.set_xlabel("layer (0 = embeddings)")
        ax2.set_ylabel("average top-1 accuracy (%)")
        ax2.set_title("By layer")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize="small")
    fig.tight_layout()
    return figure_png(fig)


def write_reports(out_dir: str, results: dict) -> dict[str, dict]:
    """Write retrieval.json, retrieval.md and retrieval.png; return their records."""
    return write_result_files(out_dir, "retrieval", results, markdown(results), plot_png(results))
