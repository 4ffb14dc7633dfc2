"""The fine-tuning loop on a task a tiny model can learn: the hypothesis names its label."""

from __future__ import annotations

import copy
import random
import shutil

import pytest

from mdeberta.eval import finetune as ft
from mdeberta.eval.config import FinetuneConfig
from mdeberta.eval.nli import LABELS, Pair

CUES = {"entailment": "true", "neutral": "perhaps", "contradiction": "false"}
XTREME = ["contradiction", "entailment", "neutral"]


def keyword_pairs(n: int, seed: int) -> list[Pair]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.randrange(3)
        premise = f"the cat sat on mat {rng.randrange(100)}"
        out.append(Pair(premise, CUES[LABELS[label]], label, "en"))
    return out


@pytest.fixture(scope="module")
def trained(hf_model_dir):
    """A classifier trained with its outputs in XTREME's order (targets mapped by name)."""
    cfg = FinetuneConfig(
        epochs=8, lr=5e-3, batch_size=16, max_length=32, warmup_steps=0, eval_steps=0, seed=3
    )
    with ft.deterministic(cfg.seed):
        clf = ft.load_classifier(str(hf_model_dir))
        clf.label_names = list(XTREME)
        train = ft.encode(clf.tokenizer, keyword_pairs(96, seed=0), cfg.max_length)
        dev = ft.encode(clf.tokenizer, keyword_pairs(48, seed=1), cfg.max_length)
        result = ft.finetune(clf, train, dev, cfg)
    return clf, dev, result


def test_finetune_learns_and_keeps_the_best_dev_weights(trained):
    clf, dev, result = trained
    assert result.steps == 48 and len(result.history) == 8  # one dev score per epoch
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    assert result.best_dev_accuracy >= 0.9
    best = max(h["dev_accuracy"] for h in result.history)
    assert result.best_step == next(h["step"] for h in result.history if h["dev_accuracy"] == best)
    assert ft.accuracy(ft.predict(clf, dev, batch_size=7), dev) == result.best_dev_accuracy


def test_saved_classifier_is_scored_by_label_name(trained, tmp_path):
    """Saved with XTREME's order in id2label, reloaded for evaluation: same predictions."""
    clf, dev, result = trained
    ft.save_classifier(clf, str(tmp_path / "clf"))
    reloaded = ft.load_classifier(str(tmp_path / "clf"), train=False)
    assert reloaded.label_names == XTREME and not reloaded.order_assumed
    assert ft.accuracy(ft.predict(reloaded, dev, batch_size=16), dev) == result.best_dev_accuracy


def test_unnamed_outputs_warn_that_the_order_is_assumed(trained, tmp_path):
    clf, _, _ = trained
    names = [f"LABEL_{i}" for i in range(3)]
    anon = ft.Classifier(copy.deepcopy(clf.model), clf.tokenizer, "hf", names, "x")
    ft.save_classifier(anon, str(tmp_path / "anon"))
    with pytest.warns(UserWarning, match="assuming the order"):
        reloaded = ft.load_classifier(str(tmp_path / "anon"), train=False)
    assert reloaded.order_assumed and reloaded.label_names == list(LABELS)


def test_tokenizer_dir_option_serves_a_model_without_one(hf_model_dir, tokenizer_dir, tmp_path):
    for name in ("config.json", "model.safetensors"):
        shutil.copy(hf_model_dir / name, tmp_path / name)
    with pytest.raises(ft.ModelError, match="no tokenizer files"):
        ft.load_tokenizer(str(tmp_path))
    clf = ft.load_classifier(str(tmp_path), tokenizer=str(tokenizer_dir))
    assert clf.tokenizer("yes", "no")["input_ids"][0] == 1  # [CLS]


def test_linear_schedule_warms_up_then_decays():
    factor = ft.linear_schedule(warmup=4, total=12)
    assert [factor(s) for s in (0, 2, 4, 8, 12, 20)] == [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]


def test_recipe_is_validated():
    with pytest.raises(ValueError, match="precision must be one of"):
        FinetuneConfig(precision="fp8")


def test_fp16_fine_tuning_learns_as_fp32_does(hf_model_dir):
    cfg = FinetuneConfig(
        epochs=8,
        lr=5e-3,
        batch_size=16,
        max_length=32,
        warmup_steps=0,
        eval_steps=0,
        seed=3,
        precision="fp16",
    )
    with ft.deterministic(cfg.seed):
        clf = ft.load_classifier(str(hf_model_dir))
        train = ft.encode(clf.tokenizer, keyword_pairs(96, seed=0), cfg.max_length)
        dev = ft.encode(clf.tokenizer, keyword_pairs(48, seed=1), cfg.max_length)
        result = ft.finetune(clf, train, dev, cfg)
    history = result.history
    assert [h["skipped_steps"] for h in history] == [0] * 8  # a loss near 1 fits at scale 2^16
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert result.best_dev_accuracy >= 0.9
    preds = ft.predict(clf, dev, batch_size=16, precision="fp16")
    assert ft.accuracy(preds, dev) == result.best_dev_accuracy
