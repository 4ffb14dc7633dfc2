"""Does the stack learn? A CPU pretraining study scored by parallel-sentence retrieval.

    python benchmarks/learning.py data --work study/               # corpus, retrieval set, shards
    python benchmarks/learning.py train --work study/ --recipe s1 --mode gdes
    python benchmarks/learning.py report --work study/ --out docs/learning/

Training text: the real program messages of ../shared/data/locale-messages (CC-100 layout, one
file per language) plus English from the msgids of the same kinds of catalogues. It is monolingual
file by file, as mDeBERTa's CC-100 was: no pair, no alignment, each training sequence one language.
Retrieval set: English/translation pairs of other catalogues (benchmarks/gettext_parallel.py,
HELD_OUT_DOMAINS), and every line of the training text whose loose form (placeholders, digits,
punctuation and case removed) equals a retrieval sentence of any language is taken out before
cleaning; data.json reports how many, and that no exact retrieval sentence is left.

Every stage is the project's own command (clean, build-vocab, shard, train, export, eval
retrieval); a recipe is a set of `--set` overrides (RECIPES). Checkpoints every `eval_every` steps
are exported and scored (model, random init and lexical baselines) afterwards.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import collapse
from learning_data import LANGUAGES, REPO, TEXT, build_data, mdeberta, prepare, shard_dir

from mdeberta.train.metrics import read_metrics

# recipes: `--set` overrides on top of train/configs/xsmall.toml (preset xsmall: 12 x 384), each
# a change to NARROW (a model small enough for ~1,500 steps in 45 minutes on 2 cores)
NARROW: dict = {
    "vocab_size": 16000,
    "seq_len": 128,
    "steps": 1500,
    "eval_every": 250,
    "set": {
        "model.num_hidden_layers": 4,
        "model.hidden_size": 128,
        "model.num_attention_heads": 2,
        "model.intermediate_size": 512,
        "model.position_buckets": 64,
        "model.max_relative_positions": 128,
        "model.max_position_embeddings": 128,
        "batch_size": 32,
        "micro_batch_size": 32,
        "lr": 2e-3,
        "warmup_steps": 100,
    },
}


def overrides(steps: int | None = None, eval_every: int | None = None, **sets) -> dict:
    """NARROW with other step counts and `--set` values."""
    return {
        **NARROW,
        "steps": steps or NARROW["steps"],
        "eval_every": eval_every or NARROW["eval_every"],
        "set": {**NARROW["set"], **sets},
    }


RECIPES: dict[str, dict] = {
    "s1": NARROW,
    # half the depth, twice the steps: more updates per token of budget
    "s2": overrides(steps=3000, eval_every=500, **{"model.num_hidden_layers": 2}),
    # Adam's epsilon 1e-4 instead of 1e-6: tiny gradients (rare rows of the tied embedding table)
    # no longer become full-size steps; tests whether the rare-token collapse costs retrieval
    "s3": overrides(adam_eps=1e-4),
    # a quarter of the learning rate: does a slower drift from the initialisation keep its token
    # matching while context is learned?
    "s4": overrides(lr=5e-4),
}


def run_dir(work: Path, recipe: str, mode: str) -> Path:
    return work / "runs" / f"{recipe}-{mode}"


def train(
    work: Path, recipe: str, mode: str, steps: int | None = None, device: str = "cpu"
) -> None:
    """`mdeberta train` with the recipe, a checkpoint every eval_every steps, all of them kept."""
    r = RECIPES[recipe]
    steps = steps or r["steps"]
    out = run_dir(work, recipe, mode)
    every = r["eval_every"]
    overrides = [
        *(f"{k}={v}" for k, v in r["set"].items()),
        f"sharing={mode}", f"steps={steps}", f"checkpoint_interval={every}",
        f"log_interval={min(50, every)}", f"keep_checkpoints={steps // every + 1}",
        "progress_bar=false", "export_at_end=false", f"device={device}",
    ]  # fmt: skip
    held_out = shard_dir(work, r["vocab_size"], r["seq_len"], "valid")
    overrides += [f"eval_data={held_out}", f"eval_interval={every}"]
    args = ["train", "--data", str(shard_dir(work, r["vocab_size"], r["seq_len"]))]
    args += ["--output", str(out), "--config", str(REPO / "train" / "configs" / "xsmall.toml")]
    for item in overrides:
        args += ["--set", item]
    mdeberta(*args, log=work / f"log-{recipe}-{mode}.txt")


def evaluate(work: Path, recipe: str, mode: str) -> list[dict]:
    """Export every checkpoint and score its discriminator (all layers); the baselines at the
    first checkpoint (they do not depend on training), the generator at the last; and how alike
    the discriminator's rare, frequent and unseen token embeddings have become (collapse.py)."""
    out = run_dir(work, recipe, mode)
    r = RECIPES[recipe]
    ids = collapse.cached_groups(
        str(shard_dir(work, r["vocab_size"], r["seq_len"])),
        work / f"token-counts-{r['vocab_size']}-{r['seq_len']}.npz",
    )
    checkpoints = sorted((out / "checkpoints").glob("step-*"), key=lambda p: int(p.name[5:]))
    rows = []
    for ckpt in checkpoints:
        step = int(ckpt.name[5:])
        export = out / "export" / ckpt.name
        if not (export / "discriminator" / "manifest.json").exists():
            mdeberta("export", str(out), "--output", str(export), "--checkpoint", str(ckpt))
        roles = ("discriminator", "generator") if ckpt == checkpoints[-1] else ("discriminator",)
        for role in roles:
            result = out / "retrieval" / f"{ckpt.name}-{role}"
            if not (result / "manifest.json").exists():
                args = ["eval", "retrieval", "--model", str(export / role)]
                args += ["--data", str(work / "parallel"), "--output", str(result), "--all-layers"]
                args += ["--batch-size", "128"]
                if role != "discriminator" or ckpt != checkpoints[0]:
                    args += ["--no-baselines"]
                mdeberta(*args, log=work / f"log-{recipe}-{mode}.txt")
            doc = json.loads((result / "retrieval.json").read_text())
            row = {"step": step, "role": role, **{k: doc[k] for k in ("average", "layers")}}
            row["collapse"] = collapse.collapse(str(export / role), ids)
            if ckpt == checkpoints[0] and role == "discriminator":
                row["collapse_random_init"] = collapse.collapse(str(export / role), ids, True)
            rows.append(row)
    (out / "retrieval.json").write_text(json.dumps(rows, indent=1))
    return rows


MODES = ("gdes", "es", "nes")
HELD_OUT = ("eval_mlm_loss", "eval_rtd_loss", "eval_rtd_accuracy", "eval_replaced_fraction")


def summarise(work: Path, recipe: str, mode: str) -> dict:
    """One mode's curves: retrieval (default and best layer), collapse, held-out scores (with the
    RTD accuracy's gain over always answering "original")."""
    rows = json.loads((run_dir(work, recipe, mode) / "retrieval.json").read_text())
    disc = [r for r in rows if r["role"] == "discriminator"]
    metrics = read_metrics(str(run_dir(work, recipe, mode)))
    held = [{"step": m["step"], **{k: m[k] for k in HELD_OUT}} for m in metrics if HELD_OUT[0] in m]
    for h in held:
        h["eval_rtd_gain"] = h["eval_rtd_accuracy"] - (1 - h["eval_replaced_fraction"])
    first = next(r for r in disc if "random_init" in r["average"])
    return {
        "steps": [r["step"] for r in disc],
        "default_layer": [r["average"]["model"] for r in disc],
        "best_layer": [max(r["layers"]["model"]) for r in disc],
        "layers_last": disc[-1]["layers"]["model"],
        "generator_last": next(r for r in rows if r["role"] == "generator")["average"]["model"],
        "collapse": [r["collapse"] for r in disc],
        "held_out": held,
        "baselines": {
            **{k: first["average"][k] for k in ("random_init", "lexical")},
            "collapse": first["collapse_random_init"],
        },
        "train": metrics,
    }


def report(work: Path, out: Path, recipes: list[str]) -> dict:
    """learning.json and one PNG per recipe, each sharing mode in its colour: retrieval accuracy by
    step (default and best layer) beside the random-init and lexical lines; MLM and RTD losses,
    training (lines) and held out (dots); how alike rare and unseen token embeddings have become;
    how many directions the frequent tokens' embeddings spread over."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out.mkdir(parents=True, exist_ok=True)
    languages = len(json.loads((work / "data.json").read_text())["retrieval_pairs"])
    doc: dict = {}
    for recipe in recipes:
        modes = [m for m in MODES if (run_dir(work, recipe, m) / "retrieval.json").exists()]
        if not modes:
            continue
        fig = Figure(figsize=(21, 4.2), dpi=100)
        FigureCanvasAgg(fig)
        acc, mlm, rtd, same, dims = (fig.add_subplot(1, 5, i) for i in range(1, 6))
        entry = doc[recipe] = {"recipe": RECIPES[recipe], "modes": {}}
        for n, mode in enumerate(modes):
            curves = summarise(work, recipe, mode)
            train_rows = curves.pop("train")
            entry["baselines"] = curves.pop("baselines")
            entry["modes"][mode] = curves
            steps, held, c = curves["steps"], curves["held_out"], curves["collapse"]
            acc.plot(steps, [100 * v for v in curves["default_layer"]], f"C{n}-o", label=mode)
            best = [100 * v for v in curves["best_layer"]]
            acc.plot(steps, best, f"C{n}:", label=f"{mode} (best layer)")
            for ax, key in ((mlm, "mlm_loss"), (rtd, "rtd_loss")):
                ax.plot([m["step"] for m in train_rows], [m[key] for m in train_rows], f"C{n}-")
                held_loss = [h[f"eval_{key}"] for h in held]
                ax.plot([h["step"] for h in held], held_loss, f"C{n}o", label=f"{mode} held out")
            same.plot(steps, [x["rare"] for x in c], f"C{n}-o", label=f"{mode} rare")
            same.plot(steps, [x["unseen"] for x in c], f"C{n}:x", label=f"{mode} unseen")
            dims.plot(steps, [x["frequent_dims"] for x in c], f"C{n}-o", label=mode)
        base = entry["baselines"]
        acc.axhline(100 * base["random_init"], color="gray", linestyle="--", label="random init")
        acc.axhline(100 * base["lexical"], color="black", linestyle=":", label="lexical (TF-IDF)")
        dims.axhline(base["collapse"]["frequent_dims"], color="gray", linestyle="--")
        dims.text(steps[0], base["collapse"]["frequent_dims"], "random init", va="bottom")
        title = f"{recipe}: retrieval, {languages} languages"
        acc.set(xlabel="step", ylabel="average top-1 (%)", title=title)
        mlm.set(xlabel="step", ylabel="MLM loss (generator)", title="MLM loss")
        rtd.set(xlabel="step", ylabel="RTD loss (discriminator)", title="RTD loss")
        same.set(xlabel="step", ylabel="mean pairwise cosine", title="token embeddings alike")
        dims.set(xlabel="step", ylabel="participation ratio", title="frequent tokens: dimensions")
        dims.set_ylim(0, 135)
        for ax in (acc, mlm, rtd, same, dims):
            ax.grid(alpha=0.3)
            ax.legend(fontsize="x-small")
        fig.tight_layout()
        fig.savefig(out / f"learning-{recipe}.png", metadata={"Software": None})
    (out / "learning.json").write_text(json.dumps(doc, indent=1))
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="training text, retrieval set, clean/vocab/shard")
    data.add_argument("--work", type=Path, required=True)
    data.add_argument("--text", type=Path, default=TEXT, help="locale-messages directory")
    data.add_argument("--languages", default=",".join(LANGUAGES))
    data.add_argument("--train-languages", default="", help="default: the languages + en")
    data.add_argument("--pairs", type=int, default=1000)
    data.add_argument("--vocab-size", type=int, default=16000)
    data.add_argument("--seq-len", type=int, default=128)
    run = sub.add_parser("train", help="train one recipe in one sharing mode, then score it")
    run.add_argument("--work", type=Path, required=True)
    run.add_argument("--recipe", default="s1", choices=sorted(RECIPES))
    run.add_argument("--mode", default="gdes", choices=MODES)
    run.add_argument("--steps", type=int, default=None, help="default: the recipe's")
    run.add_argument("--device", default="cpu", help="the trainer's device: cpu, cuda, cuda:N")
    score = sub.add_parser("score", help="(re)score a trained run's checkpoints only")
    score.add_argument("--work", type=Path, required=True)
    score.add_argument("--recipe", default="s1", choices=sorted(RECIPES))
    score.add_argument("--mode", default="gdes", choices=MODES)
    rep = sub.add_parser("report", help="learning.json and the plots from scored runs")
    rep.add_argument("--work", type=Path, required=True)
    rep.add_argument("--out", type=Path, required=True)
    rep.add_argument("--recipes", default=",".join(RECIPES))
    args = parser.parse_args()
    if args.command == "score":
        print(json.dumps(evaluate(args.work, args.recipe, args.mode)))
    if args.command == "report":
        print(json.dumps(report(args.work, args.out, args.recipes.split(",")), indent=1))
    if args.command == "train":
        start = time.monotonic()
        train(args.work, args.recipe, args.mode, args.steps, args.device)
        trained = time.monotonic()
        rows = evaluate(args.work, args.recipe, args.mode)
        print(
            json.dumps(
                {
                    "train_s": round(trained - start),
                    "eval_s": round(time.monotonic() - trained),
                    "rows": rows,
                }
            )
        )
    if args.command == "data":
        languages = args.languages.split(",")
        train_languages = (
            args.train_languages.split(",") if args.train_languages else languages + ["en"]
        )
        start = time.monotonic()
        if (args.work / "data.json").exists():
            facts = json.loads((args.work / "data.json").read_text())
        else:
            facts = build_data(args.work, args.text, languages, train_languages, args.pairs)
        prepare(args.work, args.vocab_size, args.seq_len, args.work / "log.txt")
        facts["seconds"] = round(time.monotonic() - start, 1)
        print(json.dumps(facts["training"], indent=1))


if __name__ == "__main__":
    main()
