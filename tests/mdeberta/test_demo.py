"""The demo end to end at an even smaller setting: four languages, 20 steps, one XNLI epoch."""

import json

import pytest

from mdeberta.demo import DemoConfig, run_demo

LANGUAGES = "en,de,ru,ar"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    cfg = DemoConfig(
        output=str(out),
        languages=LANGUAGES,
        vocab_size=800,
        seq_len=64,
        steps=20,
        workers=1,
        xnli_languages=LANGUAGES,
        xnli_epochs=1,
    )
    printed = []
    summary = run_demo(cfg, echo=printed.append)
    return out, summary, "\n".join(printed)


def test_every_stage_leaves_a_complete_artifact(demo):
    out, summary, _ = demo
    stages = ("clean", "vocab", "shards", "run", "hf/discriminator", "hf/generator", "xnli")
    for stage in (*stages, "retrieval"):
        assert (out / stage / "manifest.json").exists(), stage
    assert json.loads((out / "summary.json").read_text()) == summary
    assert (out / "run" / "curves.png").stat().st_size > 0
    assert (out / "xnli" / "xnli.png").stat().st_size > 0
    assert (out / "retrieval" / "retrieval.png").stat().st_size > 0


def test_summary_reports_each_stage(demo):
    _, summary, printed = demo
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

    out, _, _ = demo
    model = AutoModel.from_pretrained(out / "hf" / "discriminator")
    tokenizer = AutoTokenizer.from_pretrained(out / "hf" / "discriminator")
    batch = tokenizer(["Guten Morgen", "Доброе утро"], return_tensors="pt", padding=True)
    assert model(**batch).last_hidden_state.shape[:2] == batch["input_ids"].shape
