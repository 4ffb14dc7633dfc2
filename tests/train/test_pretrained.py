"""--init-from: continuing from an export of this trainer or from a released encoder."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from mdeberta import hf
from mdeberta.shards import VocabMismatchError, read_shards_manifest
from mdeberta.train.build import build_model
from mdeberta.train.config import TrainConfig
from mdeberta.train.pretrained import (
    check_pretrained_vocab,
    init_from_pretrained,
    pretrained_configs,
)
from tests.train.helpers import train_here


def init(path: str, vocab: dict, **cfg):
    config = TrainConfig(**cfg)
    disc_cfg, gen_cfg = pretrained_configs(path, None, {})
    model = build_model(config, disc_cfg, gen_cfg, vocab)
    init_from_pretrained(model, path)
    return model


def test_from_an_export_restores_both_models(reference_run, vocab):
    hf_dir = str(Path(reference_run) / "hf")
    model = init(hf_dir, vocab)
    disc = hf.load_pretrained(f"{hf_dir}/discriminator", head="rtd")
    gen = hf.load_pretrained(f"{hf_dir}/generator", head="mlm")
    assert torch.equal(model.E_G, gen.deberta.embeddings.word_embeddings.weight)
    assert torch.allclose(
        model.discriminator_embeddings(), disc.deberta.embeddings.word_embeddings.weight
    )
    for key, value in gen.state_dict().items():
        assert torch.equal(model.generator.state_dict()[key], value), key
    ours = model.discriminator.state_dict()
    assert torch.equal(
        ours["mask_predictions.dense.weight"], disc.state_dict()["mask_predictions.dense.weight"]
    )


def test_from_a_released_encoder(reference_run, vocab):
    released = str(Path(reference_run) / "hf" / "discriminator")  # an encoder with no generator
    model = init(released, vocab)
    disc = hf.load_pretrained(released, head="rtd")
    E_D = disc.deberta.embeddings.word_embeddings.weight
    assert torch.equal(model.E_G, E_D) and not model.E_delta.any()  # E_G := E_D, E_delta := 0
    assert model.generator.config.num_hidden_layers == 1  # half of 2
    g, d = model.generator.state_dict(), disc.state_dict()
    for key in (
        "deberta.encoder.layer.0.attention.self.query_proj.weight",
        "deberta.encoder.rel_embeddings.weight",
        "deberta.embeddings.LayerNorm.weight",
    ):
        assert torch.equal(g[key], d[key]), key


def test_continue_training_from_an_export(shards, reference_run, tmp_path):
    with pytest.warns(UserWarning, match="model sizes come from it; ignoring"):
        rows = train_here(shards, str(tmp_path / "run"), "steps=4", f"init_from={reference_run}/hf")
    assert rows[0]["mlm_loss"] < 5.5  # starts from the trained generator, not from ln(V) ~ 5.7


def test_shards_of_another_vocabulary_are_refused(shards, reference_run):
    manifest = copy.deepcopy(read_shards_manifest(shards))
    folder = str(Path(reference_run) / "hf" / "discriminator")
    assert check_pretrained_vocab(folder, manifest, shards)
    manifest["vocab"]["sha256"] = "0" * 64
    with pytest.raises(VocabMismatchError, match="vocabulary mismatch"):
        check_pretrained_vocab(folder, manifest, shards)
