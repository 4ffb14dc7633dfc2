"""Does the stack learn? A CPU pretraining study scored by parallel-sentence retrieval.

    python benchmarks/learning.py data --work study/               # corpus, retrieval set, shards
    python benchmarks/learning.py train --work study/ --recipe r1 --mode gdes
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
import lzma
import os
import subprocess
import time
from pathlib import Path

import gettext_parallel as gp

REPO = Path(__file__).resolve().parents[1]
# beside the repository, as in the project's workspace; --text points elsewhere
TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "locale-messages"
# 17 retrieval languages in four scripts, each with >= 1000 held-out pairs on Debian
LANGUAGES = "de,fr,es,it,pt,nl,sv,pl,cs,tr,vi,ru,uk,bg,ja,zh-Hans,ko".split(",")
DOC_LINES = 20  # messages per English document, as locale-messages groups them


def mdeberta(*args: str, log: Path | None = None) -> None:
    """Run one `mdeberta` command as a user would (its own process), failing loudly."""
    cmd = ["mdeberta", *args]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    with open(log or os.devnull, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT, env=env)


# data


def retrieval_sentences(pairs: dict[str, list[tuple[str, str]]]) -> set[str]:
    return {gp.normalise(s) for rows in pairs.values() for row in rows for s in row} - {""}


def filter_text(lines: list[str], banned: set[str]) -> tuple[list[str], int]:
    """Lines whose loose form is a retrieval sentence's, dropped (document breaks kept)."""
    kept, removed = [], 0
    for line in lines:
        if line.strip() and gp.normalise(line) in banned:
            removed += 1
        else:
            kept.append(line)
    return kept, removed


def write_xz(path: Path, lines: list[str]) -> None:
    with lzma.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def build_data(
    work: Path, text: Path, languages: list[str], train_languages: list[str], pairs: int
) -> dict:
    """raw/ (training text), parallel/ (retrieval set), data.json (sizes and the overlap check)."""
    held = gp.parallel_pairs(languages, gp.HELD_OUT_DOMAINS, pairs, seed=0)
    gp.write_laser(str(work / "parallel"), held)
    banned = retrieval_sentences(held)
    exact = {s.strip() for rows in held.values() for row in rows for s in row}
    raw = work / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    report = {"retrieval_pairs": {k: len(v) for k, v in held.items()}, "training": {}}
    for lang in train_languages:
        if lang == "en":
            messages = gp.english_messages(gp.HELD_OUT_DOMAINS)
            lines = []
            for i in range(0, len(messages), DOC_LINES):
                lines += [*messages[i : i + DOC_LINES], ""]
        else:
            lines = lzma.open(text / f"{lang}.txt.xz", "rt", encoding="utf-8").read().split("\n")
        kept, removed = filter_text(lines, banned)
        left = sum(1 for line in kept if line.strip() in exact)
        assert left == 0, f"{lang}: {left} retrieval sentences still in the training text"
        write_xz(raw / f"{lang}.txt.xz", kept)
        report["training"][lang] = {
            "lines_in": sum(1 for x in lines if x.strip()),
            "removed_as_retrieval_sentences": removed,
            "chars": sum(len(x) for x in kept),
        }
    (work / "data.json").write_text(json.dumps(report, indent=2))
    return report


def prepare(work: Path, vocab_size: int, seq_len: int, log: Path) -> None:
    """clean -> build-vocab (a one-pass sample: ~500k paragraphs) -> shard, with the project's
    commands; a stage whose artifact is complete is not redone."""
    clean, vocab = work / "clean", work / f"vocab-{vocab_size}"
    shards = work / f"shards-{vocab_size}-{seq_len}"
    if not (clean / "manifest.json").exists():
        mdeberta("clean", str(work / "raw" / "*.txt.xz"), "--output", str(clean), log=log)
    if not (vocab / "manifest.json").exists():
        args = ["--corpus", str(clean), "--output", str(vocab), "--vocab-size", str(vocab_size)]
        mdeberta("build-vocab", *args, "--sentences", "500000", log=log)
    if not (shards / "manifest.json").exists():
        args = ["--corpus", str(clean), "--vocab", str(vocab), "--output", str(shards)]
        mdeberta("shard", *args, "--seq-len", str(seq_len), "--overwrite", log=log)


# recipes: `--set` overrides on top of train/configs/xsmall.toml (preset xsmall: 12 x 384)
RECIPES: dict[str, dict] = {
    "s1": {
        "vocab_size": 16000,
        "seq_len": 128,
        "steps": 1500,
        "eval_every": 250,
        "set": [
            "model.num_hidden_layers=4",
            "model.hidden_size=128",
            "model.num_attention_heads=2",
            "model.intermediate_size=512",
            "model.position_buckets=64",
            "model.max_relative_positions=128",
            "model.max_position_embeddings=128",
            "batch_size=32",
            "micro_batch_size=32",
            "lr=2e-3",
            "warmup_steps=100",
        ],
    },
    "r1": {
        "vocab_size": 16000,
        "seq_len": 128,
        "steps": 3000,
        "eval_every": 500,
        "set": [
            "model.num_hidden_layers=4",
            "model.hidden_size=256",
            "model.num_attention_heads=4",
            "model.intermediate_size=1024",
            "model.position_buckets=64",
            "model.max_relative_positions=128",
            "model.max_position_embeddings=128",
            "batch_size=32",
            "micro_batch_size=32",
            "lr=1e-3",
            "warmup_steps=300",
        ],
    },
}


def run_dir(work: Path, recipe: str, mode: str) -> Path:
    return work / "runs" / f"{recipe}-{mode}"


def train(work: Path, recipe: str, mode: str, steps: int | None = None) -> None:
    """`mdeberta train` with the recipe, a checkpoint every eval_every steps, all of them kept."""
    r = RECIPES[recipe]
    steps = steps or r["steps"]
    out = run_dir(work, recipe, mode)
    every = r["eval_every"]
    overrides = [
        *r["set"], f"sharing={mode}", f"steps={steps}", f"checkpoint_interval={every}",
        f"log_interval={min(50, every)}", f"keep_checkpoints={steps // every + 1}",
        "progress_bar=false", "export_at_end=false", "device=cpu",
    ]  # fmt: skip
    args = ["train", "--data", str(work / f"shards-{r['vocab_size']}-{r['seq_len']}")]
    args += ["--output", str(out), "--config", str(REPO / "train" / "configs" / "xsmall.toml")]
    for item in overrides:
        args += ["--set", item]
    mdeberta(*args, log=work / f"log-{recipe}-{mode}.txt")


def evaluate(work: Path, recipe: str, mode: str) -> list[dict]:
    """Export every checkpoint and score its discriminator (all layers); the baselines at the
    first checkpoint (they do not depend on training), the generator at the last."""
    out = run_dir(work, recipe, mode)
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
            rows.append({"step": step, "role": role, **{k: doc[k] for k in ("average", "layers")}})
    (out / "retrieval.json").write_text(json.dumps(rows, indent=1))
    return rows


def report(work: Path, out: Path, recipes: list[str]) -> dict:
    """learning.json and one PNG per recipe: retrieval accuracy by step for each sharing mode
    (its best layer and the protocol's default layer) beside the random-init and lexical lines,
    and the MLM and RTD losses."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from mdeberta.train.metrics import read_metrics

    out.mkdir(parents=True, exist_ok=True)
    doc: dict = {}
    for recipe in recipes:
        modes = [
            m
            for m in ("gdes", "es", "nes")
            if (run_dir(work, recipe, m) / "retrieval.json").exists()
        ]
        if not modes:
            continue
        fig = Figure(figsize=(13, 4.2), dpi=110)
        FigureCanvasAgg(fig)
        acc, mlm, rtd = (fig.add_subplot(1, 3, i) for i in (1, 2, 3))
        entry = doc[recipe] = {"recipe": RECIPES[recipe], "modes": {}}
        for n, mode in enumerate(modes):
            rows = json.loads((run_dir(work, recipe, mode) / "retrieval.json").read_text())
            rows = [r for r in rows if r["role"] == "discriminator"]
            steps = [r["step"] for r in rows]
            default = [r["average"]["model"] for r in rows]
            best = [max(r["layers"]["model"]) for r in rows]
            base = next(r for r in rows if "random_init" in r["average"])["average"]
            entry["modes"][mode] = {"steps": steps, "default_layer": default, "best_layer": best}
            entry["random_init"], entry["lexical"] = base["random_init"], base["lexical"]
            acc.plot(steps, [100 * v for v in default], f"C{n}-o", label=f"{mode} (default layer)")
            acc.plot(steps, [100 * v for v in best], f"C{n}:", label=f"{mode} (best layer)")
            metrics = read_metrics(str(run_dir(work, recipe, mode)))
            x = [m["step"] for m in metrics]
            mlm.plot(x, [m["mlm_loss"] for m in metrics], f"C{n}-", label=mode)
            rtd.plot(x, [m["rtd_loss"] for m in metrics], f"C{n}-", label=mode)
        acc.axhline(100 * entry["random_init"], color="gray", linestyle="--", label="random init")
        acc.axhline(100 * entry["lexical"], color="black", linestyle=":", label="lexical (TF-IDF)")
        acc.set(
            xlabel="step", ylabel="average top-1 (%)", title=f"{recipe}: retrieval, 17 languages"
        )
        mlm.set(xlabel="step", ylabel="MLM loss (generator)", title="MLM loss")
        rtd.set(xlabel="step", ylabel="RTD loss (discriminator)", title="RTD loss")
        for ax in (acc, mlm, rtd):
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
    run.add_argument("--recipe", default="r1", choices=sorted(RECIPES))
    run.add_argument("--mode", default="gdes", choices=("gdes", "es", "nes"))
    run.add_argument("--steps", type=int, default=None, help="default: the recipe's")
    score = sub.add_parser("score", help="(re)score a trained run's checkpoints only")
    score.add_argument("--work", type=Path, required=True)
    score.add_argument("--recipe", default="r1", choices=sorted(RECIPES))
    score.add_argument("--mode", default="gdes", choices=("gdes", "es", "nes"))
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
        train(args.work, args.recipe, args.mode, args.steps)
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
