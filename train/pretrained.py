"""`--init-from`: continue pretraining from a Hugging Face checkpoint.

Two layouts are understood:

* an export of this trainer (`discriminator/` + `generator/`): both models are restored; with gdes,
  E_G := the generator's table and E_delta := E_D - E_G, so E_D is exactly the exported one.
* a released encoder such as microsoft/mdeberta-v3-base, for which no generator was published:
    - the discriminator gets every encoder weight, and its RTD head when the dir has one
      (rtd_head.safetensors), else a fresh head;
    - E_G := the released word embeddings and E_delta := 0, so at step 0 the discriminator sees
      exactly the released E_D (the choice the official code's continue-training path amounts to);
    - the generator (same width, generator_layers deep) copies the released embedding LayerNorm,
      relative embeddings and the bottom generator_layers layers, and the MLM head when the
      checkpoint has one (cls.predictions / lm_predictions); otherwise the head starts fresh.
  A generator built from the bottom layers predicts reasonable tokens from the first steps, so the
  discriminator is not fed random replacements while the generator warms up.
"""

from __future__ import annotations

import warnings

import torch

from mdeberta import hf, io
from mdeberta.model import DebertaConfig
from mdeberta.rtd import RTDModel
from mdeberta.shards import check_vocab


def is_export(path: str) -> bool:
    return io.exists(io.join(path, "discriminator", "config.json")) and io.exists(
        io.join(path, "generator", "config.json")
    )


def discriminator_dir(path: str) -> str:
    return io.join(path, "discriminator") if is_export(path) else path


def pretrained_configs(
    path: str, generator_layers: int | None, overrides: dict
) -> tuple[DebertaConfig, DebertaConfig]:
    """(discriminator, generator) configs of the checkpoint; only dropout may be overridden."""
    disc = hf.config_from_hf(io.read_json(io.join(discriminator_dir(path), "config.json")))
    dropout = {k: v for k, v in overrides.items() if k.endswith("dropout_prob")}
    ignored = sorted(set(overrides) - set(dropout))
    if ignored:
        warnings.warn(
            f"--init-from {path}: model sizes come from it; ignoring {ignored}", stacklevel=2
        )
    disc = disc.replace(**dropout)
    if is_export(path):
        gen = hf.config_from_hf(io.read_json(io.join(path, "generator", "config.json")))
        return disc, gen.replace(**dropout)
    layers = generator_layers or max(1, disc.num_hidden_layers // 2)
    return disc, disc.replace(num_hidden_layers=layers)


def check_pretrained_vocab(path: str, shards_manifest: dict, shards_url: str) -> bool:
    """Refuse shards of another vocabulary when the checkpoint ships its spm.model; returns
    whether a check was possible."""
    folder = discriminator_dir(path)
    if not io.exists(io.join(folder, "spm.model")):
        warnings.warn(
            f"{folder} has no spm.model: cannot check the shards' vocabulary", stacklevel=2
        )
        return False
    check_vocab(shards_manifest, folder, shards_url=shards_url)
    return True


@torch.no_grad()
def init_from_pretrained(model: RTDModel, path: str) -> str:
    """Load the checkpoint at `path` into `model` (see the module doc); returns a summary line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a missing head is expected and reported below
        disc = hf.load_pretrained(discriminator_dir(path), head="rtd")
    rtd_head = io.exists(io.join(discriminator_dir(path), hf.RTD_HEAD))
    E_D = disc.deberta.embeddings.word_embeddings.weight
    state = {k: v for k, v in disc.state_dict().items() if not k.endswith("word_embeddings.weight")}
    if not rtd_head:
        state = {k: v for k, v in state.items() if not k.startswith("mask_predictions.")}
    _load_partial(model.discriminator, state)
    if is_export(path):
        gen = hf.load_pretrained(io.join(path, "generator"), head="mlm")
        model.generator.load_state_dict(gen.state_dict())
        source = "an export: generator and discriminator restored"
    else:
        _generator_from_encoder(model, path, disc.state_dict())
        model.E_G.copy_(E_D)
        source = "a released encoder: E_G := its embeddings, generator from its bottom layers"
    _set_discriminator_table(model, E_D)
    head = "restored" if rtd_head else "fresh"
    return f"initialised from {path} ({source}; E_delta := E_D - E_G; RTD head {head})"


def _set_discriminator_table(model: RTDModel, E_D: torch.Tensor) -> None:
    if model.sharing == "gdes":
        model.E_delta.copy_(E_D - model.E_G)
    elif model.sharing == "nes":
        model.discriminator.deberta.embeddings.word_embeddings.weight.copy_(E_D)
    # es: one table, the generator's (E_D and E_G differ in an export only if trained apart)


def _generator_from_encoder(model: RTDModel, path: str, disc_state: dict) -> None:
    keep = model.generator.config.num_hidden_layers
    state = {}
    for key, value in disc_state.items():
        if key.startswith("mask_predictions.") or key.endswith("word_embeddings.weight"):
            continue
        if key.startswith("deberta.encoder.layer."):
            if int(key.split(".")[3]) >= keep:
                continue
        state[key] = value
    weights = hf.read_weights(path)
    head = {hf._canonical(k, "deberta."): v for k, v in weights.items()}
    state.update({k: v for k, v in head.items() if k.startswith("cls.predictions.")})
    _load_partial(model.generator, state)


def _load_partial(module: torch.nn.Module, state: dict) -> None:
    """Copy the given tensors; everything else keeps its initial values. Shapes must match."""
    own = module.state_dict()
    for key, value in state.items():
        if key not in own:
            continue
        if own[key].shape != value.shape:
            raise ValueError(
                f"--init-from: {key} has shape {tuple(value.shape)}, "
                f"the model expects {tuple(own[key].shape)}"
            )
        own[key].copy_(value)
