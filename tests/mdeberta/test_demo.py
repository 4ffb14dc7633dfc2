"""The demo end to end at an even smaller setting (tests/toy.py): four languages, 20 steps, one
XNLI epoch."""

import json
import re
import shutil

import pytest

from mdeberta.demo import DemoConfig, run_demo, start_over
from tests.toy import LANGUAGES


@pytest.fixture(scope="module")
def demo(toy_demo):
    """`mdeberta demo` as a user runs it, its standard error a file (as in a log)."""
    out, result = toy_demo
    summary = json.loads((out / "summary.json").read_text())
    return out, summary, result.stdout, result.stderr


def test_every_stage_leaves_a_complete_artifact(demo):
    out, summary, _, _ = demo
    stages = ("clean", "vocab", "shards", "run", "hf/discriminator", "hf/generator", "xnli")
    for stage in (*stages, "retrieval"):
        assert (out / stage / "manifest.json").exists(), stage
    assert json.loads((out / "summary.json").read_text()) == summary
    assert (out / "run" / "curves.png").stat().st_size > 0
    assert (out / "xnli" / "xnli.png").stat().st_size > 0
    assert (out / "retrieval" / "retrieval.png").stat().st_size > 0


def test_summary_reports_each_stage(demo):
    _, summary, printed, _ = demo
    clean = summary["stages"]["clean"]
    assert clean["languages"] == 4
    assert clean["docs_in"] == clean["docs_out"] + sum(clean["removed"].values())
    assert clean["removed"]["duplicate_doc"] == 2  # the listed duplicates in en and ru
    assert summary["stages"]["build-vocab"]["vocab_size"] == 801
    assert set(summary["stages"]["build-vocab"]["pieces_per_word_or_char"]) == set(
        LANGUAGES.split(",")
    )
    assert summary["stages"]["train"]["step"] == 20
    assert set(summary["stages"]["eval xnli"]["accuracy"]) == set(LANGUAGES.split(","))
    retrieval = summary["stages"]["eval retrieval"]
    assert set(retrieval["average"]) == {"model", "random_init", "lexical"}
    for line in ("clean", "build-vocab", "shard", "train", "eval xnli", "| ours", "eval retrieval"):
        assert line in printed
    # the retrieval table, with the plain verdict on the model against its random initialisation
    assert "| **average** |" in printed and "random initialisation" in printed


def test_exported_discriminator_loads_in_hugging_face(demo):
    from transformers import AutoModel, AutoTokenizer

    out, _, _, _ = demo
    model = AutoModel.from_pretrained(out / "hf" / "discriminator")
    tokenizer = AutoTokenizer.from_pretrained(out / "hf" / "discriminator")
    batch = tokenizer(["Guten Morgen", "Доброе утро"], return_tensors="pt", padding=True)
    assert model(**batch).last_hidden_state.shape[:2] == batch["input_ids"].shape


def test_the_log_has_no_beam_logging_and_no_progress_bar(demo):
    """Issue 16: 86 lines of Beam INFO/WARNING between the stage headers, bars redrawn with \\r."""
    _, _, _, log = demo
    assert not re.search(r"^(DEBUG|INFO|WARNING|ERROR):|apache_beam|apitools", log, re.M), log
    assert "\r" not in log
    assert "train: 20/20 steps (100%)" in log  # progress as plain lines


def test_a_second_run_into_the_same_directory_reuses_every_stage(demo):
    """The README's first command, run twice: nothing is redone, nothing fails."""
    out, first, _, _ = demo
    manifests = {p: p.read_bytes() for p in out.glob("*/manifest.json")}
    printed = []
    again = run_demo(DemoConfig(**first["config"]), echo=printed.append)
    assert all(facts["reused"] for facts in again["stages"].values())
    assert {p: p.read_bytes() for p in out.glob("*/manifest.json")} == manifests  # untouched
    for name, facts in first["stages"].items():
        assert {**facts, "reused": True, "seconds": 0} == {**again["stages"][name], "seconds": 0}
    assert "[4/7] train: up to date" in "\n".join(printed)


def test_a_changed_setting_redoes_what_depends_on_it_and_fresh_starts_over(demo, tmp_path, capsys):
    out, first, _, _ = demo
    copy = tmp_path / "demo"
    shutil.copytree(out, copy)
    (copy / "notes.txt").write_text("the user's own file")
    config = {**first["config"], "output": str(copy), "xnli_epochs": 2}
    summary = run_demo(DemoConfig(**config), echo=lambda line: None)
    redone = [name for name, facts in summary["stages"].items() if not facts.get("reused")]
    assert redone == ["eval xnli"]  # retrieval does not depend on the fine-tuning epochs
    assert json.loads((copy / "xnli" / "xnli.json").read_text())["hyperparameters"]["epochs"] == 2
    start_over(str(copy))
    assert sorted(p.name for p in copy.iterdir()) == ["notes.txt"]  # only what the demo wrote
    assert "removed the earlier demo" in capsys.readouterr().err
