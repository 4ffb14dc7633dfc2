"""Validation during pretraining: held-out MLM/RTD scores in metrics.jsonl, deterministic, exact
across resume, and without any effect on training itself."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from mdeberta.config import ConfigError
from mdeberta.shards import write_token_shards
from mdeberta.train.config import load_train_config
from tests.train.helpers import (
    QUICK,
    REFERENCE,
    TINY,
    deterministic,
    make_vocab,
    pack,
    sample_lines,
    train_here,
)

EVAL_KEYS = {
    "eval_mlm_loss",
    "eval_mlm_accuracy",
    "eval_rtd_loss",
    "eval_rtd_accuracy",
    "eval_replaced_fraction",
}


@pytest.fixture(scope="module")
def held_out(tmp_path_factory, vocab) -> str:
    """Token shards of other sequences (the sample text backwards), same vocabulary."""
    out = tmp_path_factory.mktemp("held-out")
    rows = pack(Path(vocab["url"]), sample_lines()[::-1])[:40]
    write_token_shards(str(out), rows, seq_len=len(rows[0]), vocab=vocab, sequences_per_shard=16)
    return str(out)


def with_eval(held_out: str, interval: int = 4) -> tuple[str, ...]:
    return (f"eval_data={held_out!r}".replace("'", '"'), f"eval_interval={interval}")


def test_held_out_scores_on_eval_steps_leave_training_unchanged(shards, held_out, tmp_path):
    plain = train_here(shards, str(tmp_path / "plain"), *REFERENCE, "export_at_end=false")
    rows = train_here(
        shards, str(tmp_path / "eval"), *REFERENCE, "export_at_end=false", *with_eval(held_out)
    )
    scored = [r for r in rows if EVAL_KEYS <= set(r)]
    assert [r["step"] for r in scored] == [4, 8, 12, 16, 20, 24]
    assert all(not EVAL_KEYS & set(r) for r in rows if r not in scored)
    for r in scored:
        assert all(math.isfinite(r[k]) for k in EVAL_KEYS)
        assert 0 < r["eval_replaced_fraction"] < 0.15 + 1e-9  # at most the masked share
    assert scored[-1]["eval_mlm_loss"] < scored[0]["eval_mlm_loss"]  # it learns, held out too
    # scoring draws no random number and changes no weight: the training lines are identical
    strip = [{k: v for k, v in r.items() if k not in EVAL_KEYS} for r in deterministic(rows)]
    assert strip == deterministic(plain)


def test_scores_are_exact_across_resume(shards, held_out, tmp_path):
    args = (*REFERENCE, "export_at_end=false", "keep_checkpoints=10", *with_eval(held_out))
    run = tmp_path / "run"
    whole = train_here(shards, str(run), *args)
    for late in ("step-00000016", "step-00000020", "step-00000024"):  # as if killed after 12
        shutil.rmtree(run / "checkpoints" / late)
    (run / "manifest.json").unlink()
    resumed = train_here(shards, str(run), *args)
    assert deterministic(resumed) == deterministic(whole)


def test_held_out_shards_of_another_vocabulary_are_refused(shards, tmp_path):
    lines = sample_lines()
    other = make_vocab(tmp_path / "other-vocab", lines[:500], vocab_size=400)
    data = tmp_path / "other-shards"
    write_token_shards(
        str(data), pack(tmp_path / "other-vocab", lines[:300]), seq_len=32, vocab=other
    )
    with pytest.raises(ConfigError, match="eval_data .* vocabulary .* training shards"):
        train_here(shards, str(tmp_path / "run"), *with_eval(str(data)))


def test_eval_settings_are_checked():
    with pytest.raises(ConfigError, match="multiple of log_interval"):
        load_train_config(TINY, [*QUICK, "eval_data=x", "eval_interval=3"])
    with pytest.raises(ConfigError, match="eval_data needs eval_interval"):
        load_train_config(TINY, [*QUICK, "eval_data=x"])
