"""`mdeberta demo`: the whole chain at toy scale on the sample corpus that ships in the package.

clean → build-vocab → shard → train → export → eval xnli, each stage reading the previous stage's
directory exactly as a user's commands would, then a summary of where everything is and the key
numbers of each stage. Like the rest of the CLI layer, this module imports the stages' jobs only
inside the functions that run them (their light config modules at the top), so `mdeberta --help`
stays fast.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import typer

from mdeberta import __version__, io, resources_path
from mdeberta.command import config_command
from mdeberta.config import check
from mdeberta.eval.config import FinetuneConfig, RetrievalConfig, XnliConfig
from mdeberta.manifest import artifact_identity
from mdeberta.pipelines.clean_config import CleanConfig
from mdeberta.pipelines.shard_config import ShardConfig
from mdeberta.train.config import load_train_config
from mdeberta.vocab.config import VocabConfig


@dataclass
class DemoConfig:
    output: str = "demo"
    """Directory for every artifact of the demo (one sub-directory per stage)."""
    languages: str | None = None
    """Sample languages to use (comma-separated codes); None = all 26 of the sample corpus."""
    vocab_size: int = 4000
    """SentencePiece pieces: the sample's ~200k characters in 15 scripts support about 4k."""
    seq_len: int = 128
    """Tokens per packed training sequence."""
    steps: int = 300
    """Pretraining steps of the tiny generator/discriminator (train/configs/tiny.toml)."""
    workers: int = 2
    """Local Beam worker processes for the clean and shard jobs."""
    xnli_languages: str = "xnli"
    """XNLI test languages: all 15 by default."""
    xnli_epochs: float = 5.0
    """Fine-tuning epochs on the 180 English pairs of the packaged XNLI fixture."""
    xnli_lr: float = 1e-4
    """Fine-tuning learning rate (higher than the card's 2e-5: the model and data are tiny)."""
    fresh: bool = False
    """Start over: delete the demo's earlier artifacts in `output` first (saying what went).
    Without it a rerun reuses every stage whose inputs and settings are unchanged, redoes the
    others, and training resumes from its checkpoint."""

    def __post_init__(self):
        check(self.vocab_size >= 300, f"vocab_size must be >= 300, got {self.vocab_size}")
        check(self.seq_len >= 16, f"seq_len must be >= 16, got {self.seq_len}")
        check(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        check(self.workers >= 1, f"workers must be >= 1, got {self.workers}")
        check(self.xnli_epochs > 0, f"xnli_epochs must be > 0, got {self.xnli_epochs}")


def _dir(cfg: DemoConfig, name: str) -> str:
    return io.join(cfg.output, name)


def _clean(cfg: DemoConfig) -> dict:
    # lazy: keeps `mdeberta --help` light (the stages import Beam, torch, ...)
    from mdeberta.pipelines.clean import run_clean

    inputs = [str(resources_path("sample", "*.txt.xz"))]
    stats = run_clean(
        inputs,
        _dir(cfg, "clean"),
        CleanConfig(languages=cfg.languages or "all"),
        workers=cfg.workers,
    )
    totals = stats["totals"]
    return {
        "languages": totals["languages"],
        "docs_in": totals["docs_in"],
        "docs_out": totals["docs_out"],
        "removed": totals["removed"],
        "paragraphs_removed": totals["paragraphs_removed"],
    }


def _vocab(cfg: DemoConfig) -> dict:
    # lazy: keeps `mdeberta --help` light (the stages import Beam, torch, ...)
    from mdeberta.vocab.build import build_vocab

    out = _dir(cfg, "vocab")
    vocab = VocabConfig(
        corpus=_dir(cfg, "clean"),
        output=out,
        vocab_size=cfg.vocab_size,
        sentences=50_000,
        seed_sentencepiece_size=max(100_000, cfg.vocab_size),
    )
    manifest = build_vocab(vocab)
    languages = io.read_json(io.join(out, "report.json"))["languages"]
    fertility = {lang: round(r["pieces_per_unit"], 2) for lang, r in languages.items()}
    return {
        "vocab_size": manifest["vocab_size"],
        "pieces_per_word_or_char": fertility,
        "byte_fallback_rate_max": max(r["byte_fallback_rate"] for r in languages.values()),
    }


def _shard(cfg: DemoConfig) -> dict:
    # lazy: keeps `mdeberta --help` light (the stages import Beam, torch, ...)
    from mdeberta.pipelines.shard import run

    manifest = run(
        ShardConfig(
            corpus=_dir(cfg, "clean"),
            vocab=_dir(cfg, "vocab"),
            output=_dir(cfg, "shards"),
            seq_len=cfg.seq_len,
            workers=cfg.workers,
            overwrite=True,
        )
    )
    return {
        "sequences": manifest["num_sequences"],
        "tokens": manifest["num_sequences"] * cfg.seq_len,
        "seq_len": cfg.seq_len,
    }


def _train(cfg: DemoConfig) -> dict:
    # lazy: keeps `mdeberta --help` light (the stages import Beam, torch, ...)
    from mdeberta.train.run import train

    tiny = str(resources.files("mdeberta.train").joinpath("configs", "tiny.toml"))
    overrides = [f"steps={cfg.steps}", "export_at_end=false"]  # warm-up: 10% of a short run
    overrides.append(f"fresh={str(_retrain(cfg)).lower()}")
    run_dir = train(_dir(cfg, "shards"), _dir(cfg, "run"), load_train_config(tiny, overrides))
    last = io.read_json(io.join(run_dir, "manifest.json"))["final_metrics"]
    keys = ("step", "tokens", "mlm_loss", "rtd_loss", "rtd_accuracy", "tokens_per_s")
    return {k: round(last[k], 4) if isinstance(last[k], float) else last[k] for k in keys}


def _retrain(cfg: DemoConfig) -> bool:
    """Whether an earlier run in the demo cannot be continued: other shards (its data position
    means nothing in them), or more steps than asked for. Otherwise training resumes."""
    info_url = io.join(_dir(cfg, "run"), "run.json")
    if not io.exists(info_url):
        return False
    info = io.read_json(info_url)
    shards = artifact_identity(_dir(cfg, "shards"))
    return info.get("shards_identity") != shards or info["config"]["steps"] > cfg.steps


def _export(cfg: DemoConfig) -> dict:
    # lazy: keeps `mdeberta --help` light (the stages import Beam, torch, ...)
    from mdeberta.train.export import export_run

    return export_run(_dir(cfg, "run"), _dir(cfg, "hf"))


def _xnli(cfg: DemoConfig) -> dict:
    # lazy: keeps `mdeberta --help` light (the stages import Beam, torch, ...)
    from mdeberta.eval.xnli import run_xnli

    fixture = str(resources_path("xnli"))
    results = run_xnli(
        XnliConfig(
            model=io.join(_dir(cfg, "hf"), "discriminator"),
            output=_dir(cfg, "xnli"),
            train=fixture,
            dev=fixture,
            test=fixture,
            languages=cfg.xnli_languages,
            finetune=FinetuneConfig(
                epochs=cfg.xnli_epochs, lr=cfg.xnli_lr, batch_size=16, max_length=128
            ),
        )
    )
    return {"average": results["average"], "accuracy": results["accuracy"]}


def _retrieval(cfg: DemoConfig) -> dict:
    # lazy: keeps `mdeberta --help` light (evaluation imports torch and transformers)
    from mdeberta.eval.retrieval import run_retrieval

    wanted = [x.strip() for x in cfg.xnli_languages.split(",") if x.strip() not in ("", "en")]
    results = run_retrieval(
        RetrievalConfig(
            model=io.join(_dir(cfg, "hf"), "discriminator"),
            data=f"xnli-tsv:{resources_path('xnli')}",
            output=_dir(cfg, "retrieval"),
            languages="all" if cfg.xnli_languages == "xnli" else ",".join(wanted),
        )
    )
    return {"average": results["average"], "layer": results["protocol"]["layer"]}


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[DemoConfig], dict]  # returns the facts the summary shows
    directory: str  # where its artifact is, in the demo's output
    settings: tuple[str, ...]  # the DemoConfig fields that shape the artifact
    inputs: tuple[str, ...]  # the directories of the artifacts it reads


HF = "hf/discriminator"  # the export's artifact the evaluations read
STAGES = [
    Stage("clean", _clean, "clean", ("languages",), ()),
    Stage("build-vocab", _vocab, "vocab", ("vocab_size",), ("clean",)),
    Stage("shard", _shard, "shards", ("seq_len",), ("clean", "vocab")),
    Stage("train", _train, "run", ("steps",), ("shards",)),
    Stage("export", _export, HF, (), ("run",)),
    Stage("eval xnli", _xnli, "xnli", ("xnli_languages", "xnli_epochs", "xnli_lr"), (HF,)),
    Stage("eval retrieval", _retrieval, "retrieval", ("xnli_languages",), (HF,)),
]
STATE = "stages.json"
"""{stage: {key, identity, facts}} of each stage completed in the output directory: what its
artifact was made from (_key) and what it held (its identity, from content)."""
WRITTEN = ("clean", "vocab", "shards", "run", "hf", "xnli", "retrieval", "summary.json", STATE)
"""What the demo writes into its output directory: what --fresh removes."""


def run_demo(cfg: DemoConfig, echo: Callable[[str], None] = print) -> dict:
    """Run every stage in order, reusing those whose output was made from the same inputs and
    settings by an earlier run into the same directory; write and return the summary."""
    if cfg.fresh:
        start_over(cfg.output)
    state_url = io.join(cfg.output, STATE)
    state = io.read_json(state_url) if io.exists(state_url) else {}
    summary: dict = {"output": cfg.output, "config": dataclasses.asdict(cfg), "stages": {}}
    started = time.perf_counter()
    for i, stage in enumerate(STAGES, 1):
        t0 = time.perf_counter()
        inputs = {d: artifact_identity(_dir(cfg, d)) for d in stage.inputs}
        key = _key(cfg, stage, inputs)
        record = state.get(stage.name, {})
        if _up_to_date(cfg, stage, record, key):
            echo(f"\n[{i}/{len(STAGES)}] {stage.name}: up to date ({_dir(cfg, stage.directory)})")
            facts = {**record["facts"], "reused": True}
        else:
            echo(f"\n[{i}/{len(STAGES)}] {stage.name}")
            facts = stage.run(cfg)
            identity = artifact_identity(_dir(cfg, stage.directory))
            state[stage.name] = {"key": key, "identity": identity, "facts": facts}
            io.write_json(state_url, state)
        summary["stages"][stage.name] = {**facts, "seconds": round(time.perf_counter() - t0, 1)}
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["artifacts"] = {
        "clean corpus": _dir(cfg, "clean"),
        "vocabulary": _dir(cfg, "vocab"),
        "token shards": _dir(cfg, "shards"),
        "run (checkpoints, metrics.jsonl)": _dir(cfg, "run"),
        "Hugging Face models": _dir(cfg, "hf"),
        "XNLI results": _dir(cfg, "xnli"),
        "retrieval results": _dir(cfg, "retrieval"),
        "plots": f"{_dir(cfg, 'run')}/curves.png, {_dir(cfg, 'xnli')}/xnli.png, "
        f"{_dir(cfg, 'retrieval')}/retrieval.png",
    }
    io.write_json(io.join(cfg.output, "summary.json"), summary)
    tables = [
        io.read_text(io.join(_dir(cfg, name), f"{name}.md")) for name in ("xnli", "retrieval")
    ]
    echo(format_summary(summary, "\n".join(tables)))
    return summary


def _key(cfg: DemoConfig, stage: Stage, inputs: dict[str, str]) -> str:
    """What a stage's artifact is made from: its settings, its inputs' identities, our version."""
    recipe = {
        "stage": stage.name,
        "version": __version__,
        "settings": {name: getattr(cfg, name) for name in stage.settings},
        "inputs": inputs,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _up_to_date(cfg: DemoConfig, stage: Stage, record: dict, key: str) -> bool:
    """Whether the stage's complete artifact is the one an earlier run made from `key`."""
    if record.get("key") != key:
        return False
    try:
        return artifact_identity(_dir(cfg, stage.directory)) == record.get("identity")
    except (OSError, ValueError):  # gone, incomplete or damaged: made again
        return False


def start_over(output: str) -> None:
    """Remove what an earlier demo wrote into `output` (WRITTEN only), saying what went."""
    gone = [name for name in WRITTEN if io.exists(io.join(output, name))]
    if not gone:
        return
    fs, path = io.url_to_fs(output)
    for name in gone:
        fs.rm(f"{path}/{name}", recursive=True)
    print(
        f"mdeberta: --fresh: removed the earlier demo from {output}: {', '.join(gone)}",
        file=sys.stderr,
    )


def _reused(stages: dict) -> str:
    names = [name for name, facts in stages.items() if facts.get("reused")]
    return f" (up to date from an earlier run: {', '.join(names)})" if names else ""


def format_summary(summary: dict, tables: str = "") -> str:
    """The closing report: where each artifact is and each stage's key numbers."""
    s = summary["stages"]
    clean, vocab, shard, train = s["clean"], s["build-vocab"], s["shard"], s["train"]
    fertility = vocab["pieces_per_word_or_char"]
    shown = [k for k in ("en", "de", "ru", "ar", "hi", "zh-Hans") if k in fertility]
    examples = ", ".join(f"{k} {fertility[k]}" for k in shown)
    lines = [
        "",
        f"Demo finished in {summary['seconds']:.0f} s{_reused(s)}. Artifacts:",
        *[f"  {name:34s} {path}" for name, path in summary["artifacts"].items()],
        "",
        f"clean        {clean['docs_out']} of {clean['docs_in']} documents kept "
        f"({clean['languages']} languages); documents removed: {json.dumps(clean['removed'])}, "
        f"paragraphs removed: {json.dumps(clean['paragraphs_removed'])}",
        f"build-vocab  {vocab['vocab_size']} ids; pieces per word (per character where words "
        f"are not space-separated): {examples}",
        f"shard        {shard['sequences']} sequences of {shard['seq_len']} ids "
        f"= {shard['tokens']} tokens",
        f"train        {train['step']} steps, {train['tokens']} tokens: MLM loss "
        f"{train['mlm_loss']:.3f}, RTD loss {train['rtd_loss']:.3f}, "
        f"RTD accuracy {train['rtd_accuracy']:.3f}",
        f"eval xnli    average accuracy {100 * s['eval xnli']['average']:.1f}% "
        "(a toy model on a toy corpus: the plumbing, not a score)",
    ]
    if "eval retrieval" in s:
        avg = s["eval retrieval"]["average"]
        lines.append(
            f"eval retrieval  average top-1 (layer {s['eval retrieval']['layer']}): model "
            f"{100 * avg['model']:.1f}%, random init {100 * avg['random_init']:.1f}%, lexical "
            f"{100 * avg['lexical']:.1f}%; "
            + (
                "the model beats its random initialisation"
                if avg["model"] > avg["random_init"]
                else "the model does NOT beat its random initialisation (300 toy steps; "
                "nor did any model of the CPU study: docs/learning.md)"
            )
        )
    return "\n".join(lines) + ("\n\n" + tables if tables else "")


@config_command(DemoConfig)
def demo(*, cfg: DemoConfig) -> None:
    """Run the whole chain at toy scale on the sample corpus shipped in the package.

    clean → build-vocab → shard → train → export → eval xnli → eval retrieval, each stage's
    progress shown, then a summary: where each artifact is, the key numbers of every stage, the
    XNLI table and the retrieval table (the model beside its random initialisation and a lexical
    baseline). A few minutes on 2 CPU cores.

    Run again into the same directory, it reuses every stage whose inputs and settings are
    unchanged and redoes the rest (training resumes from its checkpoint); --fresh starts over.

    \b
    Example:
      mdeberta demo --output demo/
      mdeberta demo --output demo/ --steps 600    # 300 more steps, then evaluates
    """
    run_demo(cfg, echo=typer.echo)
