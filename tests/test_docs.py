"""Every command in the README's and docs/*.md's shell blocks runs, so the examples cannot rot.

A document's commands run in order, in this process (as `mdeberta` runs them; `python -m
mdeberta.train ...` as `mdeberta train ...`, its same command), in a directory seeded with the toy
world of tests/toy.py: every path the documents read exists there at toy scale, and a hub id they
name is a local directory of that name, which `datasets` and `transformers` load first. Two
tables keep them quick and offline:

- TOY: settings that replace a command's own or are appended to it, only to shrink the work (a
  tiny model, a few steps, a small vocabulary, fewer languages). The documented options are
  still parsed and validated, and a documented `--set` is validated with the final values too
  (the README's `--set steps=1000`, which the warm-up once refused, fails here the same way).
- SKIP: commands that cannot run here, each with its reason. A new document's blocks are
  collected automatically: a command that neither runs nor is skipped fails this test.
- A whole block that walks a job at real scale (a released model from the hub, CC-100, GPUs) is
  marked in its document by the line `<!-- docs-test: skip: REASON -->` just above it.

Paths a document's own commands write are not seeded (they are made from scratch), except
`demo`: the README's `mdeberta demo` into an existing demo directory reuses it, as it says.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.conftest import restored_logging
from tests.toy import build_world, demo_args

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL = ("bash", "sh", "shell", "console")
PROGRAMS = ("mdeberta", "python", "python3", "torchrun", "pip")

SKIP = {  # a regex on the command -> why it cannot run in the test suite
    r"^python3 -m venv|^\. \.venv/bin/activate|^pip install": "makes the environment the suite "
    "runs in",
    r"^ruff |^python -m pytest": "the linters and this suite themselves (CI runs them: .ci/run)",
    r"DataflowRunner": "needs a Google Cloud project (docs/dataflow.md walks through it)",
    r"^torchrun": "several processes or nodes with GPUs (tests/train/test_ddp.py runs torchrun "
    "with 2 CPU processes)",
    r"^python benchmarks/": "a benchmark: minutes of measurement on the data it names",
    r"hub:google/xtreme": "downloads the hub's Tatoeba sets (the loader is tested on a local "
    "copy in tests/eval/test_parallel.py)",
    r"^cat ": "shows a file the command before it wrote",
}
TRAIN = ["steps=4", "log_interval=2", "checkpoint_interval=4", "batch_size=8"]
TRAIN += ["micro_batch_size=8", "model.preset=tiny"]
XNLI = ["languages=en,de", "max_train_examples=40", "max_eval_examples=16", "finetune.epochs=1"]
XNLI += ["finetune.max_length=32", "finetune.batch_size=8", "finetune.eval_steps=0"]
TOY = {  # command -> (option values replaced, arguments appended)
    "mdeberta clean": ({"--workers": "2"}, []),
    "mdeberta build-vocab": ({"--vocab-size": "800"}, []),
    "mdeberta shard": ({"--seq-len": "64"}, []),
    "mdeberta train": ({}, [x for s in TRAIN for x in ("--set", s)]),
    "mdeberta eval xnli": ({}, [x for s in XNLI for x in ("--set", s)]),
    "mdeberta eval retrieval": ({}, ["--set", "languages=de"]),
    "mdeberta extend-vocab": ({"--add": "50"}, []),
    "mdeberta demo": ({}, demo_args()),
}
MODULES = {  # python -m MODULE: the mdeberta command it runs
    "mdeberta": [],
    "mdeberta.pipelines.clean": ["clean"],
    "mdeberta.pipelines.shard": ["shard"],
    "mdeberta.train": ["train"],
}
PATHS = {"/data/": "data/"}  # a document's absolute paths, inside the test's directory
REPO_PATHS = ("train/configs/", "mdeberta/resources/")  # relative to a clone of the repository


MARKER = re.compile(r"<!-- docs-test: skip: (.+?) -->\n```")


def command_blocks(path: Path, marked: bool = False) -> list[tuple[int, str]]:
    """(line, text) of each shell block: tagged bash/sh/..., or untagged holding only commands
    (not a diagram, a tree or JSON); those under a skip marker only when `marked`."""
    text = path.read_text()
    blocks = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        lang, body = match.groups()
        lines = commands(body)
        if lang in SHELL or (not lang and lines and all(x.startswith(PROGRAMS) for x in lines)):
            skip = MARKER.search(text, max(0, match.start() - 300), match.start() + 3)
            if marked or not (skip and skip.end() == match.start() + 3):
                blocks.append((text[: match.start()].count("\n") + 1, body))
    return blocks


def commands(block: str) -> list[str]:
    """The block's commands: continuation lines joined, comment lines dropped, `a && b` split."""
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = [x.strip() for x in joined.splitlines() if x.strip() and not x.strip().startswith("#")]
    return [part.strip() for line in lines for part in line.split(" && ")]


def skipped(command: str) -> str | None:
    return next((why for pattern, why in SKIP.items() if re.search(pattern, command)), None)


def argv_of(command: str) -> tuple[str, list[str]]:
    """The command's TOY name and the argv `mdeberta.cli.main` runs it with."""
    words = [_local(w) for w in shlex.split(command, comments=True)]
    if words[0] in ("python", "python3") and words[1] == "-m" and words[2] in MODULES:
        args = MODULES[words[2]] + words[3:]
    else:
        assert words[0] == "mdeberta", f"neither runs here nor is in SKIP: {command}"
        args = words[1:]
    spoken = " ".join(["mdeberta", *args])
    name = max((n for n in TOY if spoken.startswith(n + " ")), key=len, default=spoken)
    replace, extra = TOY.get(name, ({}, []))
    args = [a if i == 0 else replace.get(args[i - 1], a) for i, a in enumerate(args)]
    return name, args + extra


def _local(word: str) -> str:
    """A documented path as it is in the test's directory or the repository."""
    for documented, here in PATHS.items():
        if word.startswith(documented):
            word = here + word[len(documented) :]
    for path in REPO_PATHS:  # also after a source kind: xnli-tsv:mdeberta/resources/xnli
        word = re.sub(rf"(^|:){re.escape(path)}", rf"\g<1>{REPO}/{path}", word)
    return word


def _outputs(command: str) -> set[str]:
    """What a command writes: its --output, as a path in the test's directory."""
    words = shlex.split(command, comments=True)
    return {_local(words[i + 1]).rstrip("/") for i, w in enumerate(words[:-1]) if w == "--output"}


@pytest.fixture(scope="module")
def world(toy_demo, tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("world"), toy_demo[0])


CASES = [(doc, blocks) for doc in DOCUMENTS if (blocks := command_blocks(doc))]


@pytest.mark.parametrize(("doc", "blocks"), CASES, ids=[doc.name for doc, _ in CASES])
def test_every_documented_command_runs(doc, blocks, world, tmp_path, monkeypatch, capfd):
    import datasets

    from mdeberta.cli import main

    lines = [(line, c) for line, block in blocks for c in commands(block) if not skipped(c)]
    written = set().union(*(_outputs(c) for _, c in lines)) - {"demo"}
    shutil.copytree(
        world,
        tmp_path,
        dirs_exist_ok=True,
        ignore=lambda folder, names: [
            n for n in names if str((Path(folder) / n).relative_to(world)) in written
        ],
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / ".datasets"))
    for line, command in lines:
        name, argv = argv_of(command)
        with restored_logging():
            try:
                main(argv)
                code = 0
            except SystemExit as e:
                code = e.code
        err = capfd.readouterr().err
        assert code in (0, None), f"{doc.name}:{line}: `{command}` as {argv} failed:\n{err[-3000:]}"


def test_the_readme_steps_are_collected_and_every_skip_is_needed():
    every = [c for doc in DOCUMENTS for _, b in command_blocks(doc) for c in commands(b)]
    for doc in DOCUMENTS:  # a marked block is skipped, and only it
        marked = len(command_blocks(doc, marked=True)) - len(command_blocks(doc))
        assert marked == len(MARKER.findall(doc.read_text())), doc.name
    assert any(c.startswith("mdeberta train --data shards/") for c in every)
    assert any(c.startswith("mdeberta eval xnli --model runs/base") for c in every)  # untagged
    for pattern in SKIP:
        assert any(re.search(pattern, c) for c in every), f"SKIP {pattern!r} matches nothing"
