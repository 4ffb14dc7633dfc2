"""Export to Hugging Face, plotting and the embedding analysis, on the reference run."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from mdeberta.cli import app
from mdeberta.train.analyze import average_cosine
from mdeberta.train.export import load_run, merged_discriminator


def test_exported_models_load_with_transformers(reference_run, vocab):
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    hf_dir = Path(reference_run) / "hf"
    model, _, step = load_run(reference_run)
    assert step == 24
    ids = torch.tensor([[1, 10, 20, 30, 40, 50, 2]])
    with torch.no_grad():
        disc = AutoModel.from_pretrained(hf_dir / "discriminator").eval()
        ours = model.discriminator.deberta(ids).last_hidden_state  # E_G + E_delta at runtime
        assert torch.allclose(disc(input_ids=ids).last_hidden_state, ours, atol=1e-5)
        gen = AutoModelForMaskedLM.from_pretrained(hf_dir / "generator").eval()
        assert torch.allclose(gen(input_ids=ids).logits, model.generator(ids).logits, atol=1e-4)
    merged = merged_discriminator(model).deberta.embeddings.word_embeddings.weight
    assert torch.equal(merged, model.E_G.detach() + model.E_delta.detach())
    assert model.E_delta.abs().sum() > 0  # trained away from its zero init
    tokenizer = AutoTokenizer.from_pretrained(hf_dir / "discriminator")
    assert len(tokenizer) == vocab["vocab_size"]
    manifest = json.loads((hf_dir / "generator" / "manifest.json").read_text())
    assert manifest["kind"] == "hf-model" and manifest["options"]["step"] == 24


def test_export_command(reference_run, tmp_path):
    result = CliRunner().invoke(app, ["export", reference_run, "--output", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    for name in ("discriminator", "generator"):
        a = (tmp_path / "hf" / name / "model.safetensors").read_bytes()
        assert a == (Path(reference_run) / "hf" / name / "model.safetensors").read_bytes()


def test_plot_command(reference_run, tmp_path):
    out = tmp_path / "c.png"
    result = CliRunner().invoke(app, ["plot", reference_run, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert (Path(reference_run) / "curves.png").exists()


def test_average_cosine_matches_the_pairwise_definition():
    torch.manual_seed(0)
    table = torch.randn(30, 8) + 0.5
    u = torch.nn.functional.normalize(table.double(), dim=1)
    sims = u @ u.T
    brute = (sims.sum() - sims.diagonal().sum()) / (30 * 29)
    assert abs(average_cosine(table) - float(brute)) < 1e-12
    assert abs(average_cosine(torch.ones(5, 3)) - 1.0) < 1e-12


def test_analyze_embeddings_command(reference_run, tmp_path):
    out = tmp_path / "sim.json"
    result = CliRunner().invoke(app, ["analyze-embeddings", reference_run, "--json", str(out)])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(out.read_text())
    assert row["sharing"] == "gdes" and row["step"] == 24
    assert -1 <= row["E_G"] <= 1 and -1 <= row["E_D"] <= 1 and row["E_G"] != row["E_D"]
    assert "| gdes | 24 |" in result.output


def test_export_takes_the_newest_checkpoint_whose_weights_verify(reference_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference_run, run, ignore=shutil.ignore_patterns("hf"))
    model = run / "checkpoints" / "step-00000024" / "model.safetensors"
    model.write_bytes(model.read_bytes()[:-1])
    _, _, step = load_run(str(run))
    assert step == 20
    (line,) = capsys.readouterr().err.splitlines()
    assert "step-00000024/model.safetensors" in line and "cut short" in line
    assert model.exists()  # a reader moves nothing


def test_exports_and_runs_are_identified_by_their_files(reference_run):
    from mdeberta.manifest import identity, read_manifest, verify_files

    run = read_manifest(reference_run, kind="run")
    assert sorted(run["files"]) == [
        f"checkpoints/step-00000024/{name}"
        for name in ("model.safetensors", "optimizer.pt", "rank-00000.pt")
    ]
    disc = read_manifest(f"{reference_run}/hf/discriminator", kind="hf-model")
    gen = read_manifest(f"{reference_run}/hf/generator", kind="hf-model")
    assert {"config.json", "model.safetensors", "rtd_head.safetensors"} <= disc["files"].keys()
    assert "tokenizer.json" in gen["files"] and "rtd_head.safetensors" not in gen["files"]
    verify_files(f"{reference_run}/hf/discriminator", disc["files"])
    assert identity(disc) != identity(gen)
