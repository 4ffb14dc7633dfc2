"""The toy world the documentation's commands run in (tests/test_docs.py) and the demo's small
setting (tests/mdeberta/test_demo.py): every path the README and docs/*.md read, at toy scale.

    world/
      demo/                        `mdeberta demo` at SMALL_DEMO (the one pipeline run they share)
      clean/ vocab/ shards/        its artifacts, where the README's steps put them
      runs/{xsmall,base,tiny,gdes,es,nes}/   its run, with hf/ exported into it
      models/xsmall/               its export
      microsoft/mdeberta-v3-base/  its discriminator, where a hub id resolves to a local directory
      mdeberta-v3-base/            the same, as a download of it
      clean-heldout/, clean-am/    a copy of clean/; a clean corpus of the sample's Swahili
      facebook/xnli/               the packaged XNLI fixture as a copy of the hub repo (parquet)
      XNLI-1.0/, multinli_1.0/     the fixture in the original archives' layout
      LASER/data/tatoeba/v1/       German-English pairs of the fixture in LASER's file layout
      data/cc100/                  four files of the packaged sample corpus
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from mdeberta import resources_path

LANGUAGES = "en,de,ru,ar"
SMALL_DEMO = {
    "languages": LANGUAGES,
    "vocab-size": 800,
    "seq-len": 64,
    "steps": 20,
    "workers": 2,  # worker processes, as the demo's default: their logging must not show
    "xnli-languages": LANGUAGES,
    "xnli-epochs": 1,
}
RUNS = ("xsmall", "base", "tiny", "gdes", "es", "nes")


def demo_args() -> list[str]:
    return [x for key, value in SMALL_DEMO.items() for x in (f"--{key}", str(value))]


def run_demo_cli(out: Path) -> subprocess.CompletedProcess:
    """`mdeberta demo` at SMALL_DEMO as a user runs it, its standard error captured as a log."""
    cmd = [sys.executable, "-m", "mdeberta", "demo", "--output", str(out), *demo_args()]
    return subprocess.run(cmd, capture_output=True, text=True)


def build_world(world: Path, demo: Path) -> Path:
    """The toy world (module docstring) around the finished demo directory `demo`."""
    shutil.copytree(demo, world / "demo")
    for name in ("clean", "vocab", "shards"):
        shutil.copytree(demo / name, world / name)
    for name in RUNS:
        shutil.copytree(demo / "run", world / "runs" / name)
        shutil.copytree(demo / "hf", world / "runs" / name / "hf")
    shutil.copytree(demo / "hf", world / "models" / "xsmall")
    shutil.copytree(demo / "hf" / "discriminator", world / "microsoft" / "mdeberta-v3-base")
    shutil.copytree(demo / "hf" / "discriminator", world / "mdeberta-v3-base")  # a download
    shutil.copytree(demo / "clean", world / "clean-heldout")  # training.md's held-out text
    _clean(world / "clean-am", "sw")  # the README's new language: one the demo's base lacks
    fixture = resources_path("xnli")
    (world / "XNLI-1.0").mkdir()
    for name in ("xnli.dev.tsv", "xnli.test.tsv"):
        shutil.copy(fixture / name, world / "XNLI-1.0" / name)
    (world / "multinli_1.0").mkdir()
    shutil.copy(fixture / "multinli.train.jsonl", world / "multinli_1.0/multinli_1.0_train.jsonl")
    _hub_copy(world / "facebook" / "xnli")
    _laser(world / "LASER" / "data" / "tatoeba" / "v1")
    (world / "data" / "cc100").mkdir(parents=True)
    for lang in LANGUAGES.split(","):
        shutil.copy(resources_path("sample", f"{lang}.txt.xz"), world / "data" / "cc100")
    return world


def _clean(output: Path, lang: str) -> None:
    """A clean corpus of one language of the packaged sample (for extend-vocab's new text)."""
    from mdeberta.pipelines.clean import run_clean
    from mdeberta.pipelines.clean_config import CleanConfig

    run_clean([str(resources_path("sample", f"{lang}.txt.xz"))], str(output), CleanConfig())


def _hub_copy(root: Path) -> None:
    """facebook/xnli's layout: a config per language, parquet splits, labels 0 entailment,
    1 neutral, 2 contradiction; English has a train split (the fixture's MultiNLI pairs)."""
    import datasets

    from mdeberta.eval.data import load_nli
    from mdeberta.eval.nli import LABELS
    from mdeberta.languages import XNLI_LANGUAGES

    fixture = str(resources_path("xnli"))
    features = datasets.Features(
        {
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
        }
    )
    splits = {
        "validation": load_nli(f"xnli-tsv:{fixture}", "dev", XNLI_LANGUAGES),
        "test": load_nli(f"xnli-tsv:{fixture}", "test", XNLI_LANGUAGES),
        "train": load_nli(f"multinli:{fixture}", "train", ["en"]),
    }
    readme = ["---", "configs:"]
    for lang in XNLI_LANGUAGES:
        readme += [f"- config_name: {lang}", "  data_files:"]
        for split, data in splits.items():
            if lang not in data.pairs:
                continue
            pairs = data.pairs[lang]
            columns = {
                "premise": [p.premise for p in pairs],
                "hypothesis": [p.hypothesis for p in pairs],
                "label": [features["label"].str2int(LABELS[p.label]) for p in pairs],
            }
            (root / lang).mkdir(parents=True, exist_ok=True)
            table = datasets.Dataset.from_dict(columns, features=features)
            table.to_parquet(str(root / lang / f"{split}-00000-of-00001.parquet"))
            readme += [f"  - split: {split}", f"    path: {lang}/{split}-*"]
    (root / "README.md").write_text("\n".join([*readme, "---", ""]))


def _laser(folder: Path) -> None:
    """tatoeba.deu-eng.{deu,eng}: the fixture's German premises beside their English ones."""
    from mdeberta.eval.data import load_nli

    data = load_nli(f"xnli-tsv:{resources_path('xnli')}", "test", ["en", "de"])
    english = list(dict.fromkeys(p.premise for p in data.pairs["en"]))
    german = list(dict.fromkeys(p.premise for p in data.pairs["de"]))
    folder.mkdir(parents=True)
    (folder / "tatoeba.deu-eng.eng").write_text("\n".join(english) + "\n")
    (folder / "tatoeba.deu-eng.deu").write_text("\n".join(german) + "\n")
