"""--init-from: continuing from an export of this trainer, the official release layout, or a
released encoder."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import torch

from mdeberta import hf
from mdeberta.shards import VocabMismatchError, read_shards_manifest
from mdeberta.train.build import build_model
from mdeberta.train.config import TrainConfig
from mdeberta.train.pretrained import init_from_pretrained, pretrained_configs
from mdeberta.train.resize import find_extension
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
    assert find_extension(folder, manifest, shards) is None  # the model's own vocabulary
    manifest["vocab"]["sha256"] = "0" * 64
    both = f"sha256 {'0' * 64} .*neither the model's .*spm.model, sha256"
    with pytest.raises(VocabMismatchError, match=both):
        find_extension(folder, manifest, shards)


# the official continue-training layout (microsoft/DeBERTa rtd.sh `*-continue`)

# our names -> the official trainer's (its EnhancedMaskDecoder's lm_head; the RTD head's typo)
_OFFICIAL = {
    "cls.predictions.transform.": "lm_predictions.lm_head.",
    "cls.predictions.bias": "lm_predictions.lm_head.bias",
    "mask_predictions.classifier.": "mask_predictions.classifer.",
}


def _official_names(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        for ours, theirs in _OFFICIAL.items():
            key = key.replace(ours, theirs)
        out[key] = value.clone()
    return out


def official_layout(reference_run: str, folder: Path, *, delta_only=False, legacy=False) -> Path:
    """The reference export rewritten as the official trainer saves a continue-training pair:
    pytorch_model.bin (D, with the absolute position table and, as the hub's, the MLM head too)
    and pytorch_model.generator.bin (G, with the position table its EMD reads). delta_only: D's
    table saved as GDES's E_delta (`_weight`) only, as the official RTDModel's state dict has it."""
    hf_dir = Path(reference_run) / "hf"
    disc = hf.load_pretrained(str(hf_dir / "discriminator"), head="rtd").state_dict()
    gen = hf.load_pretrained(str(hf_dir / "generator"), head="mlm").state_dict()
    width = disc["deberta.embeddings.word_embeddings.weight"].shape[1]
    positions = {"deberta.embeddings.position_embeddings.weight": torch.randn(128, width)}
    d = _official_names({**disc, **positions})
    d.update({k: v for k, v in _official_names(gen).items() if k.startswith("lm_predictions.")})
    if delta_only:
        E_D = d.pop("deberta.embeddings.word_embeddings.weight")
        E_G = gen["deberta.embeddings.word_embeddings.weight"]
        d["deberta.embeddings.word_embeddings._weight"] = E_D - E_G
        d["deberta.embeddings.position_embeddings._weight"] = torch.zeros(128, width)
    folder.mkdir(parents=True)
    save = {"_use_new_zipfile_serialization": not legacy}
    torch.save(d, folder / hf.TORCH_WEIGHTS, **save)
    torch.save(_official_names({**gen, **positions}), folder / hf.OFFICIAL_GENERATOR, **save)
    for name in ("config.json", "spm.model"):
        shutil.copy(hf_dir / "discriminator" / name, folder / name)
    return folder


@pytest.mark.parametrize("variant", ["merged", "delta_only", "legacy"])
def test_from_the_official_layout_restores_both_models(reference_run, vocab, tmp_path, variant):
    folder = official_layout(
        reference_run,
        tmp_path / "official",
        delta_only=variant == "delta_only",
        legacy=variant == "legacy",
    )
    disc_cfg, gen_cfg = pretrained_configs(str(folder), None, {})
    hf_dir = Path(reference_run) / "hf"
    assert gen_cfg == hf.config_from_hf(hf.io.read_json(str(hf_dir / "generator/config.json")))
    model = init(str(folder), vocab)
    disc = hf.load_pretrained(str(hf_dir / "discriminator"), head="rtd").state_dict()
    gen = hf.load_pretrained(str(hf_dir / "generator"), head="mlm").state_dict()
    for key, value in gen.items():  # the MLM head from lm_predictions.lm_head.*
        assert torch.equal(model.generator.state_dict()[key], value), key
    E_D = disc["deberta.embeddings.word_embeddings.weight"]
    assert torch.allclose(model.discriminator_embeddings(), E_D, atol=1e-6)
    assert torch.allclose(model.E_delta, E_D - model.E_G, atol=1e-6)
    ours = model.discriminator.state_dict()
    for key in ("mask_predictions.classifier.weight", "deberta.encoder.layer.1.output.dense.bias"):
        assert torch.equal(ours[key], disc[key]), key  # the head's `classifer` typo read


def test_continue_training_from_the_official_layout(shards, reference_run, tmp_path):
    folder = official_layout(reference_run, tmp_path / "official")
    with pytest.warns(UserWarning, match="model sizes come from it; ignoring"):
        rows = train_here(shards, str(tmp_path / "run"), "steps=2", f"init_from={folder}")
    assert rows[0]["mlm_loss"] < 5.5  # the released generator, not a fresh one (ln V ~ 5.7)


def test_an_official_generator_with_code_in_it_is_refused(reference_run, tmp_path):
    folder = official_layout(reference_run, tmp_path / "official")
    torch.save({"weight": torch.zeros(2), "hook": copy.copy}, folder / hf.OFFICIAL_GENERATOR)
    with pytest.raises(ValueError, match=r"pytorch_model.generator.bin: holds objects other"):
        pretrained_configs(str(folder), None, {})
    torch.save({"classifier.weight": torch.zeros(2)}, folder / hf.OFFICIAL_GENERATOR)
    with pytest.raises(ValueError, match="has no DeBERTa encoder weights"):
        pretrained_configs(str(folder), None, {})


def test_a_directory_of_no_known_layout_is_refused(tmp_path):
    (tmp_path / hf.TORCH_WEIGHTS).write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="no config.json; expected a Hugging Face model"):
        pretrained_configs(str(tmp_path), None, {})


def test_a_released_encoder_keeps_the_heads_its_weights_hold(reference_run, vocab, tmp_path):
    """As the deberta-v3 hub checkpoints: one pytorch_model.bin with deberta.*, the RTD head
    (mask_predictions.*) and an MLM head (lm_predictions.lm_head.*), no generator file."""
    folder = official_layout(reference_run, tmp_path / "released")
    (folder / hf.OFFICIAL_GENERATOR).unlink()
    model = init(str(folder), vocab)
    hf_dir = Path(reference_run) / "hf"
    disc = hf.load_pretrained(str(hf_dir / "discriminator"), head="rtd").state_dict()
    gen = hf.load_pretrained(str(hf_dir / "generator"), head="mlm").state_dict()
    ours = model.discriminator.state_dict()
    assert torch.equal(
        ours["mask_predictions.classifier.weight"], disc["mask_predictions.classifier.weight"]
    )
    head = model.generator.state_dict()
    assert torch.equal(
        head["cls.predictions.transform.dense.weight"],
        gen["cls.predictions.transform.dense.weight"],
    )
    assert torch.equal(model.E_G, disc["deberta.embeddings.word_embeddings.weight"])
