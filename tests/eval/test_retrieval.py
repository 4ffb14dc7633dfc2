"""`mdeberta eval retrieval`: the protocol on hand-checked cases, the baselines, whole runs."""

import json
import math

import pytest
import torch

from mdeberta import resources_path
from mdeberta.eval.config import RetrievalConfig
from mdeberta.eval.retrieval import (
    default_layer,
    embed,
    load_encoder,
    mean_pool,
    resolve_layer,
    run_retrieval,
    scores,
    tfidf,
    tokenize,
    top1,
)
from mdeberta.manifest import read_manifest


def test_top1_on_hand_checked_vectors():
    # cosines of query i with target j:  q0: t0 1.0, t1 0.0, t2 .71 -> right
    #                                    q1: t0 .71, t1 .71, t2 1.0 -> wrong (t2)
    #                                    q2: t0 0.0, t1 .71, t2 .50 -> wrong (t1)
    queries = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    forward, backward = top1(queries, targets)
    assert forward == pytest.approx(1 / 3)
    # target j retrieves among the queries: t0 -> q0 right; t1 -> q2 (.71) not q1 (0);
    # t2 -> q1 (1.0) not q2 (.5)
    assert backward == pytest.approx(1 / 3)
    s = scores(queries, targets)
    assert s == pytest.approx({"xx_to_en": 1 / 3, "en_to_xx": 1 / 3, "mean": 1 / 3})


def test_a_tie_is_a_miss_and_cosine_ignores_scale():
    same = torch.ones(3, 4)
    assert top1(same, same) == (0.0, 0.0)
    eye = torch.eye(3)
    assert top1(5 * eye, 0.1 * eye) == (1.0, 1.0)
    assert top1(torch.zeros(2, 3), torch.zeros(2, 3)) == (0.0, 0.0)  # empty vectors never win


def test_mean_pool_over_kept_positions_only():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]
    assert mean_pool(hidden, torch.tensor([[0, 0, 0]])).tolist() == [[0.0, 0.0]]


def test_tfidf_by_hand():
    vectors = tfidf([[5, 5, 7], [7], [9]])  # ids 5, 7, 9 -> columns 0, 1, 2
    idf = [math.log(4 / 2) + 1, math.log(4 / 3) + 1, math.log(4 / 2) + 1]
    expected = torch.tensor([[2 * idf[0], idf[1], 0.0], [0.0, idf[1], 0.0], [0.0, 0.0, idf[2]]])
    torch.testing.assert_close(vectors, expected)


def test_layer_defaults_and_indices():
    assert default_layer(12) == 8 and default_layer(24) == 16 and default_layer(2) == 1
    assert resolve_layer(None, 12) == 8
    assert resolve_layer(0, 12) == 0 and resolve_layer(-1, 12) == 12 and resolve_layer(-13, 12) == 0
    with pytest.raises(ValueError, match="layers 0..12"):
        resolve_layer(13, 12)


def config(model, output, **kw) -> RetrievalConfig:
    data = kw.pop("data", str(resources_path("xnli")))
    return RetrievalConfig(model=str(model), data=data, output=str(output), device="cpu", **kw)


def test_our_hooks_give_transformers_hidden_states(our_model_dir, tmp_path):
    """Our backend collects layers through forward hooks; transformers returns them: on our
    export both must pool to the same vectors at every layer."""
    ours = load_encoder(config(our_model_dir, tmp_path, backend="mdeberta"))
    theirs = load_encoder(config(our_model_dir, tmp_path, backend="hf"))
    ids = tokenize(
        ours.tokenizer, ["A short one.", "A somewhat longer sentence here, with more."], 64
    )
    for pool_special in (True, False):
        a = embed(ours, ids, [0, 1, 2], batch_size=1, pool_special=pool_special)
        b = embed(theirs, ids, [0, 1, 2], batch_size=2, pool_special=pool_special)
        for layer in (0, 1, 2):
            torch.testing.assert_close(a[layer], b[layer], atol=1e-5, rtol=1e-4)


def test_batching_by_length_does_not_change_the_vectors(hf_model_dir, tmp_path):
    enc = load_encoder(config(hf_model_dir, tmp_path))
    sentences = ["One.", "Two words here and more of them.", "Three", "A fourth, medium one."]
    ids = tokenize(enc.tokenizer, sentences, 64)
    one_by_one = embed(enc, ids, [2], batch_size=1)[2]
    batched = embed(enc, ids, [2], batch_size=3)[2]
    torch.testing.assert_close(one_by_one, batched, atol=1e-5, rtol=1e-4)


def test_a_whole_run_writes_reports_and_is_deterministic(our_model_dir, tmp_path):
    out = tmp_path / "a"
    results = run_retrieval(config(our_model_dir, out, languages="de,zh,sw"))
    assert list(results["languages"]) == ["de", "zh-Hans", "sw"]
    assert results["protocol"]["layer"] == 1  # round(2/3 of 2 layers)
    for row in results["languages"].values():
        assert set(row) >= {"model", "random_init", "lexical", "pairs", "chance"}
        assert row["pairs"] > 20 and row["chance"] == pytest.approx(1 / row["pairs"])
    # the lexical baseline matches shared tokens (digits, names): better than chance
    assert results["average"]["lexical"] > 2 * results["chance"]
    manifest = read_manifest(str(out), kind="retrieval-results")
    assert set(manifest["files"]) == {"retrieval.json", "retrieval.md", "retrieval.png"}
    assert "| **average** |" in (out / "retrieval.md").read_text()
    again = run_retrieval(config(our_model_dir, tmp_path / "b", languages="de,zh,sw"))
    assert again["languages"] == results["languages"]
    other_seed = run_retrieval(config(our_model_dir, tmp_path / "c", languages="de", seed=1))
    first = results["languages"]["de"]
    assert other_seed["languages"]["de"]["model"] == first["model"]
    assert other_seed["languages"]["de"]["lexical"] == first["lexical"]


def test_all_layers_and_any_hf_encoder(hf_model_dir, tmp_path):
    out = tmp_path / "layers"
    results = run_retrieval(config(hf_model_dir, out, languages="de,fr", all_layers=True))
    assert results["model"]["backend"] == "hf"
    assert len(results["layers"]["model"]) == 3 and len(results["layers"]["random_init"]) == 3
    layer = results["protocol"]["layer"]
    assert results["layers"]["model"][layer] == pytest.approx(results["average"]["model"])
    assert "by layer" in (out / "retrieval.md").read_text()
    saved = json.loads((out / "retrieval.json").read_text())
    assert (
        saved["layers_per_language"]["fr"]["model"][layer]
        == saved["languages"]["fr"]["model"]["mean"]
    )


def test_a_pretrained_copy_of_the_random_model_scores_like_the_baseline(our_model_dir, tmp_path):
    """The random-init baseline is the model's own architecture: scoring a checkpoint that IS a
    seed-0 initialisation gives the baseline's numbers exactly (the run then says it does not
    beat its random initialisation)."""
    import torch

    from mdeberta.hf import load_pretrained, save_pretrained
    from mdeberta.manifest import write_manifest
    from mdeberta.model import DebertaModel

    base = load_pretrained(str(our_model_dir), head="base")
    torch.manual_seed(3)
    fresh = DebertaModel(base.config)
    path = tmp_path / "fresh"
    save_pretrained(fresh, str(path), tokenizer_dir=str(our_model_dir))
    write_manifest(str(path), "hf-model", 1, options={})
    results = run_retrieval(config(path, tmp_path / "out", languages="de,ru", seed=3))
    for row in results["languages"].values():
        assert row["model"] == row["random_init"]
    assert (
        "does NOT beat its random initialisation" in (tmp_path / "out" / "retrieval.md").read_text()
    )


def test_the_command_line(our_model_dir, tmp_path):
    from typer.testing import CliRunner

    from mdeberta.cli import app

    args = [
        "eval",
        "retrieval",
        "--model",
        str(our_model_dir),
        "--data",
        str(resources_path("xnli")),
    ]
    args += [
        "--output",
        str(tmp_path / "cli"),
        "--languages",
        "de",
        "--layer",
        "-1",
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "average top-1" in result.output
    assert json.loads((tmp_path / "cli" / "retrieval.json").read_text())["protocol"]["layer"] == 2


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_inference_pools_close_to_fp32(our_model_dir, tmp_path, precision):
    full = load_encoder(config(our_model_dir, tmp_path))
    half = load_encoder(config(our_model_dir, tmp_path, precision=precision))
    ids = tokenize(
        full.tokenizer, ["A short one.", "Ein etwas längerer Satz, mit mehr Wörtern."], 64
    )
    a, b = embed(full, ids, [1], batch_size=2)[1], embed(half, ids, [1], batch_size=2)[1]
    assert b.dtype == torch.float32  # pooled and compared in fp32 whatever the autocast
    torch.testing.assert_close(a, b, atol=0.05, rtol=0.05)
