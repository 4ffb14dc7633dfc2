"""benchmarks/collapse.py, centering.py and the study's held-out split, on hand-checked inputs."""

from __future__ import annotations

import math

import numpy as np
import torch

from benchmarks.collapse import effective_dimensions, groups, mean_pairwise_cosine


def brute_force(rows: torch.Tensor) -> float:
    unit = torch.nn.functional.normalize(rows.double(), dim=1)
    n = len(rows)
    return sum(float(unit[i] @ unit[j]) for i in range(n) for j in range(n) if i != j) / (
        n * (n - 1)
    )


def test_mean_pairwise_cosine_of_known_rows():
    assert math.isclose(mean_pairwise_cosine(torch.tensor([[2.0, 1.0]] * 5)), 1.0)
    assert math.isclose(mean_pairwise_cosine(torch.eye(4)), 0.0, abs_tol=1e-12)
    # (1,0), (0,1), (1,1)/sqrt2: pairs 0, 1/sqrt2, 1/sqrt2 -> mean sqrt2/3; lengths do not matter
    rows = torch.tensor([[3.0, 0.0], [0.0, 0.5], [7.0, 7.0]])
    assert math.isclose(mean_pairwise_cosine(rows), math.sqrt(2) / 3, rel_tol=1e-12)
    # opposite rows: -1
    assert math.isclose(mean_pairwise_cosine(torch.tensor([[1.0, 2.0], [-1.0, -2.0]])), -1.0)
    assert math.isnan(mean_pairwise_cosine(torch.ones(1, 3)))


def test_mean_pairwise_cosine_matches_every_pair_summed():
    rows = torch.randn(37, 16, generator=torch.Generator().manual_seed(0))
    assert math.isclose(mean_pairwise_cosine(rows), brute_force(rows), rel_tol=1e-9)


def test_effective_dimensions_count_the_directions_rows_spread_over():
    assert math.isclose(effective_dimensions(torch.eye(5) * 3.0), 4.0)  # centred: 4 left
    line = torch.arange(10.0)[:, None] * torch.tensor([[1.0, 2.0, -1.0]])
    assert math.isclose(effective_dimensions(line), 1.0)
    # two directions, variance 4:1 -> (4+1)^2 / (16+1)
    two = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert math.isclose(effective_dimensions(two), 25 / 17)


def test_groups_by_count_without_special_ids():
    #              id: 0  1  2  3  4  5  6  7  8  9
    counts = np.array([9, 0, 5, 1, 0, 1, 7, 0, 3, 2])
    ids = groups(counts, special=[0, 1], size=3)
    assert ids["rare"].tolist() == [3, 5, 9]  # counts 1, 1 (tie: lower id first), 2
    assert ids["frequent"].tolist() == [6, 2, 8]  # 7, 5, 3; the special id 0 (9) left out
    assert ids["unseen"].tolist() == [4, 7]  # never seen; special id 1 left out


def test_held_out_documents_are_whole_and_never_trained_on(monkeypatch):
    monkeypatch.syspath_prepend("benchmarks")  # the study's scripts import their siblings
    from learning_data import split_documents

    lines = []
    for d in range(10):
        lines += [f"doc{d} para{p}" for p in range(d % 3 + 1)] + ["", ""][: 1 + d % 2]
    train, held = split_documents(lines, every=4)

    def docs(out: list[str]) -> list[str]:
        return [word for word in " ".join(out).split() if word.startswith("doc")]

    assert sorted(set(docs(held))) == ["doc3", "doc7"]  # every 4th document, counted from 0
    assert not set(docs(held)) & set(docs(train))
    assert sorted(docs(train) + docs(held)) == sorted(docs(lines))  # nothing dropped
    assert held == ["doc3 para0", "", "doc7 para0", "doc7 para1", ""]  # whole, one blank apart


def test_centring_diagnostic_scores_the_protocol_and_removes_the_mean(our_model_dir, tmp_path):
    from benchmarks.centering import centred, run, standardised
    from mdeberta import resources_path
    from mdeberta.eval.config import RetrievalConfig
    from mdeberta.eval.retrieval import run_retrieval

    rows = torch.randn(9, 4, generator=torch.Generator().manual_seed(1)) + 5.0
    assert torch.allclose(centred(rows).mean(0), torch.zeros(4), atol=1e-6)
    assert torch.allclose(standardised(rows).std(0), torch.ones(4))
    data = str(resources_path("xnli"))
    diagnosis = run(str(our_model_dir), data, languages="de,ru")
    protocol = run_retrieval(
        RetrievalConfig(
            model=str(our_model_dir), data=data, output=str(tmp_path / "r"), languages="de,ru",
            all_layers=True, device="cpu",
        )
    )  # fmt: skip
    assert diagnosis["languages"] == 2
    for system in ("model", "random_init"):  # uncentred, it is eval retrieval's own number
        assert np.allclose(diagnosis[system]["plain"], protocol["layers"][system], atol=1e-4)
        for treated in ("centred", "standardised"):
            assert all(0.0 <= x <= 1.0 for x in diagnosis[system][treated])


def test_collapse_of_an_exported_model_is_its_layer_normed_rows_alike(our_model_dir):
    from transformers import AutoModel

    from benchmarks.collapse import collapse

    counts = np.arange(120) % 7  # every 7th id unseen; ties everywhere
    ids = groups(counts, special=[0, 1, 2, 3], size=10)
    result = collapse(str(our_model_dir), ids)
    model = AutoModel.from_pretrained(str(our_model_dir))
    with torch.no_grad():
        for name, group in ids.items():
            rows = model.embeddings.LayerNorm(
                model.embeddings.word_embeddings.weight[group.tolist()]
            )
            assert result[name] == round(brute_force(rows), 4)
            assert abs(result[name]) < 0.2  # a random initialisation: nearly orthogonal rows
            if name == "frequent":
                assert result["frequent_dims"] == round(effective_dimensions(rows), 1)
