"""`mdeberta eval xnli` end to end on the packaged fixture (15 languages) with tiny models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mdeberta import resources_path
from mdeberta.cli import app
from mdeberta.eval.config import FinetuneConfig, XnliConfig
from mdeberta.eval.finetune import ModelError
from mdeberta.eval.nli import LABELS, DataError
from mdeberta.eval.xnli import run_xnli
from mdeberta.languages import XNLI_LANGUAGES
from mdeberta.manifest import read_manifest

FIXTURE = str(resources_path("xnli"))
# a high lr so six steps move the tiny model off a constant guess
RECIPE = dict(epochs=1, lr=1e-3, max_length=64, eval_steps=3, eval_batch_size=64)


def config(model, output, seed=7, **overrides) -> XnliConfig:
    recipe = FinetuneConfig(seed=seed, **RECIPE)
    sources = dict(train=FIXTURE, dev=FIXTURE, test=FIXTURE)
    return XnliConfig(model=str(model), output=str(output), finetune=recipe, **sources | overrides)


@pytest.fixture(scope="module")
def hf_run(hf_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run-a")
    return out, run_xnli(config(hf_model_dir, out))


def test_fixture_end_to_end_across_15_languages(hf_run):
    out, results = hf_run
    assert results["languages"] == list(XNLI_LANGUAGES)
    assert set(results["accuracy"]) == set(XNLI_LANGUAGES)
    assert all(n == 21 for n in results["examples"].values())
    assert results["model"]["backend"] == "hf"
    assert results["data"]["train"]["skipped"] == {"no_gold_label": 3}
    assert [h["step"] for h in results["selection"]["history"]] == [3, 6]  # every 3 steps
    assert results["selection"]["best_step"] in (3, 6)
    assert json.loads((out / "xnli.json").read_text())["accuracy"] == results["accuracy"]
    table = (out / "xnli.md").read_text()
    for row in (
        "| ours: ",
        "| mDeBERTa-v3-base (published) | 79.8 |",
        "| XLM-R base (published) | 76.2 |",
    ):
        assert row in table
    assert "| model | avg | en | fr | es | de |" in table
    assert (out / "xnli.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = read_manifest(str(out), kind="xnli-results")
    assert set(manifest["files"]) == {"xnli.json", "xnli.md", "xnli.png"}
    assert manifest["accuracy"] == results["accuracy"]


def test_same_seed_same_results(hf_model_dir, hf_run, tmp_path):
    _, first = hf_run
    again = run_xnli(config(hf_model_dir, tmp_path / "b", save_classifier=False))
    assert again["accuracy"] == first["accuracy"]
    assert again["selection"]["history"] == first["selection"]["history"]  # losses to the bit
    other = run_xnli(config(hf_model_dir, tmp_path / "c", seed=8, languages="en"))
    assert other["selection"]["history"] != first["selection"]["history"]


def test_eval_only_scores_the_saved_classifier(hf_run, tmp_path):
    out, first = hf_run
    langs = {"en": first["accuracy"]["en"], "ur": first["accuracy"]["ur"]}
    results = run_xnli(
        config(out / "classifier", tmp_path / "e", languages="en,ur", eval_only=True)
    )
    assert results["accuracy"] == langs and results["model"]["output_labels"] == list(LABELS)
    assert results["eval_only"] and results["data"]["train"] is None


def test_our_checkpoint_trains_our_classifier(our_model_dir, tmp_path):
    cfg = config(our_model_dir, tmp_path / "ours", languages="en,sw", max_train_examples=64)
    results = run_xnli(cfg)
    assert results["model"]["backend"] == "mdeberta"
    assert results["selection"]["train_pairs"] == 64
    assert read_manifest(str(tmp_path / "ours" / "classifier"), kind="hf-model")["head"]
    assert read_manifest(str(tmp_path / "ours"))["inputs"]["model"]["url"] == str(our_model_dir)
    saved = tmp_path / "ours" / "classifier"
    reloaded = run_xnli(config(saved, tmp_path / "again", languages="en,sw", eval_only=True))
    assert reloaded["model"]["backend"] == "mdeberta"
    assert reloaded["accuracy"] == results["accuracy"]


def test_model_without_tokenizer_files_fails_clearly(hf_model_dir, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(hf_model_dir / name, bare / name)
    with pytest.raises(ModelError, match="no tokenizer files.*--tokenizer"):
        run_xnli(config(bare, tmp_path / "out", languages="en"))


@pytest.mark.parametrize("encoder", ["hf_model_dir", "our_model_dir"])
def test_eval_only_on_an_encoder_without_head_fails(encoder, request, tmp_path):
    model = request.getfixturevalue(encoder)
    with pytest.raises(ModelError, match="drop --eval-only"):
        run_xnli(config(model, tmp_path / "out", languages="en", eval_only=True))


def test_requested_language_missing_from_the_data_fails_before_training(tmp_path):
    with pytest.raises(DataError, match=r"no pairs for language\(s\) ja"):
        run_xnli(config(tmp_path, tmp_path / "out", languages="en,ja"))  # no model is read


@pytest.mark.parametrize(
    "args, message",
    [
        (["--test", "hf:facebook/xnli"], "unknown source kind 'hf'"),
        (["--languages", "en,xx"], "xx"),
        (["--test", FIXTURE, "--languages", "en,ja"], "no pairs for language(s) ja"),
        (["--lr", "-1"], "lr must be > 0"),
    ],
)
def test_cli_bad_input_gives_a_clear_error(args, message, tmp_path):
    """A ValueError naming the problem, which mdeberta.cli.main prints as one line."""
    base = ["eval", "xnli", "--model", str(tmp_path), "--output", str(tmp_path / "out")]
    result = CliRunner().invoke(app, base + args)
    assert isinstance(result.exception, ValueError), result.output
    assert message in str(result.exception)


def test_cli_runs_on_the_fixture(hf_model_dir, tmp_path):
    out = tmp_path / "cli"
    args = ["eval", "xnli", "--model", str(hf_model_dir), "--output", str(out), "--train", FIXTURE]
    args += ["--dev", FIXTURE, "--test", FIXTURE, "--languages", "en,de", "--epochs", "0.5"]
    args += ["--max-length", "32", "--no-save-classifier"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "average accuracy" in result.output
    manifest = read_manifest(str(out), kind="xnli-results")
    assert manifest["options"]["finetune"]["epochs"] == 0.5 and set(manifest["accuracy"]) == {
        "en",
        "de",
    }
    assert not (out / "classifier").exists()


def test_local_train_and_test_read_no_dev_set_from_the_hub(tmp_path):
    """Issue 16: with local --train/--test, --dev defaulted to hub:facebook/xnli; offline, the
    run failed after ~25 s of retries. Now the dev set is the test source's own."""
    env = {**os.environ, "HF_ENDPOINT": "https://hub.invalid"}  # a hub that cannot be reached
    env.pop("HF_HUB_OFFLINE", None)
    empty = tmp_path / "not-a-model"  # exists: the run reads every data set, then fails on it
    empty.mkdir()
    base = [sys.executable, "-m", "mdeberta", "eval", "xnli", "--model", str(empty), "--output"]
    base += [str(tmp_path / "out"), "--train", FIXTURE, "--test", FIXTURE, "--languages", "en"]
    local = subprocess.run(base, capture_output=True, text=True, env=env, timeout=300)
    last = local.stderr.splitlines()[-1]
    assert last.startswith("mdeberta: error: ") and str(empty) in last, local.stderr
    assert "hub" not in local.stderr.lower(), local.stderr
    hub = subprocess.run(
        [*base, "--dev", "hub:facebook/xnli"], capture_output=True, text=True, env=env
    )
    assert hub.returncode == 1
    assert hub.stderr.startswith("mdeberta: error: cannot reach the Hugging Face hub"), hub.stderr
    assert "to fetch the dev set hub:facebook/xnli" in hub.stderr and "--dev" in hub.stderr
    assert len(hub.stderr.splitlines()) == 1, hub.stderr  # no "Retrying in 1s" lines
    assert not (tmp_path / "out").exists()  # no empty output directory left behind


def test_a_missing_model_directory_is_named_and_a_hub_id_needs_the_hub(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from mdeberta.eval import hub

    with pytest.raises(FileNotFoundError, match=r"--model /no/such/model: no such directory"):
        run_xnli(config("/no/such/model", tmp_path / "out"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "https://hub.invalid")
    hub._hub_unreachable.cache_clear()
    try:
        with pytest.raises(DataError, match="to fetch the model microsoft/mdeberta-v3-base"):
            run_xnli(config("microsoft/mdeberta-v3-base", tmp_path / "out"))
    finally:
        hub._hub_unreachable.cache_clear()
    assert not (tmp_path / "out").exists()
