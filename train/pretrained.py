"""`--init-from`: continue pretraining from a Hugging Face or official DeBERTa checkpoint.

Three layouts are understood:

* an export of this trainer (`discriminator/` + `generator/`): both models are restored; with gdes,
  E_G := the generator's table and E_delta := E_D - E_G, so E_D is exactly the exported one.
* the official continue-training layout (`pytorch_model.bin` + `pytorch_model.generator.bin`, as
  microsoft/deberta-v3-{xsmall,small,large} publish them; mdeberta.hf reads their key names):
  both models are restored the same way; the generator's sizes come from its weights.
* a released encoder such as microsoft/mdeberta-v3-base, for which no generator was published:
    - the discriminator gets every encoder weight, and its RTD head when the dir has one
      (rtd_head.safetensors, or mask_predictions.* in the weights as the v3 releases have it),
      else a fresh head;
    - E_G := the released word embeddings and E_delta := 0, so at step 0 the discriminator sees
      exactly the released E_D (the choice the official code's continue-training path amounts to);
    - the generator (same width, generator_layers deep) copies the released embedding LayerNorm,
      relative embeddings and the bottom generator_layers layers, and the MLM head when the
      checkpoint has one (cls.predictions / lm_predictions); otherwise the head starts fresh.
  A generator built from the bottom layers predicts reasonable tokens from the first steps, so the
  discriminator is not fed random replacements while the generator warms up.

On shards of an extended vocabulary (train/resize.py) the vocabulary-sized tensors grow: E_G, E_D
(so E_delta) and the generator's output bias get the new pieces' rows, each the mean of the rows of
the piece's base segmentation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from mdeberta import hf, io
from mdeberta.model import DebertaConfig, DebertaForMaskedLM, DebertaForRTD
from mdeberta.rtd import RTDModel
from mdeberta.train.resize import VocabExtension, grow_rows

# the generator's vocabulary-sized tensors (E_G is also the tied output layer)
_VOCAB_ROWS = ("deberta.embeddings.word_embeddings.weight", "cls.predictions.bias")


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
    config_url = io.join(discriminator_dir(path), "config.json")
    if not io.exists(config_url):
        raise FileNotFoundError(
            f"--init-from {path}: no config.json; expected a Hugging Face model directory, an "
            f"export (discriminator/ + generator/) or the official layout ({hf.TORCH_WEIGHTS} + "
            f"{hf.OFFICIAL_GENERATOR} + config.json)"
        )
    disc = hf.config_from_hf(io.read_json(config_url))
    dropout = {k: v for k, v in overrides.items() if k.endswith("dropout_prob")}
    ignored = sorted(set(overrides) - set(dropout))
    if generator_layers and (is_export(path) or hf.is_official(path)):
        ignored.append("generator_layers")
    if ignored:
        warnings.warn(
            f"--init-from {path}: model sizes come from it; ignoring {ignored}", stacklevel=2
        )
    disc = disc.replace(**dropout)
    if is_export(path):
        gen = hf.config_from_hf(io.read_json(io.join(path, "generator", "config.json")))
    elif hf.is_official(path):
        gen = hf.generator_config(disc, hf.read_torch(io.join(path, hf.OFFICIAL_GENERATOR)))
    else:
        layers = generator_layers or max(1, disc.num_hidden_layers // 2)
        gen = disc.replace(num_hidden_layers=layers)
    return disc, gen.replace(**dropout)


@dataclass
class _Checkpoint:
    discriminator: DebertaForRTD
    generator: DebertaForMaskedLM | None  # None: a released encoder (no generator published)
    rtd_head: bool
    source: str
    weights: dict | None = None  # a released encoder's tensors, HF-named (its MLM head for G)


def _load(path: str) -> _Checkpoint:
    if hf.is_official(path):
        disc, gen, head = hf.load_official(path)
        return _Checkpoint(disc, gen, head, "the official layout: generator and discriminator")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a missing head is expected and reported below
        disc = hf.load_pretrained(discriminator_dir(path), head="rtd")
    head = io.exists(io.join(discriminator_dir(path), hf.RTD_HEAD))
    if is_export(path):
        gen = hf.load_pretrained(io.join(path, "generator"), head="mlm")
        return _Checkpoint(disc, gen, head, "an export: generator and discriminator restored")
    source = "a released encoder: E_G := its embeddings, generator from its bottom layers"
    # the DeBERTa-v3 releases keep their RTD (and MLM) head in pytorch_model.bin itself
    weights = {hf._canonical(k, "deberta."): v for k, v in hf.read_weights(path).items()}
    head = head or any(k.startswith("mask_predictions.") for k in weights)
    return _Checkpoint(disc, None, head, source, weights)


@torch.no_grad()
def init_from_pretrained(
    model: RTDModel, path: str, extension: VocabExtension | None = None
) -> str:
    """Load the checkpoint at `path` into `model` (see the module doc), growing the vocabulary
    tables to the shards' extended vocabulary when `extension` is given; returns a summary line."""
    ckpt = _load(path)
    disc = ckpt.discriminator.state_dict()
    E_D = disc.pop("deberta.embeddings.word_embeddings.weight")
    if not ckpt.rtd_head:
        disc = {k: v for k, v in disc.items() if not k.startswith("mask_predictions.")}
    _load_partial(model.discriminator, disc)
    if ckpt.generator is not None:
        gen = _grown(ckpt.generator.state_dict(), model.generator.state_dict(), extension)
        model.generator.load_state_dict(gen)
    else:
        _generator_from_encoder(model, ckpt, extension)
        model.E_G.copy_(_grow(E_D, model.E_G, extension))
    _set_discriminator_table(model, _grow(E_D, model.discriminator_embeddings(), extension))
    head = "restored" if ckpt.rtd_head else "fresh"
    grown = f"; {len(extension.new_ids)} new pieces" if extension else ""
    return f"initialised from {path} ({ckpt.source}; E_delta := E_D - E_G; RTD head {head}{grown})"


def _grow(old: torch.Tensor, fresh: torch.Tensor, extension: VocabExtension | None):
    return old if extension is None else grow_rows(old, fresh, extension)


def _grown(state: dict, own: dict, extension: VocabExtension | None) -> dict:
    """`state` with its vocabulary-sized tensors grown to the model's rows."""
    return {k: _grow(v, own[k], extension) if k in _VOCAB_ROWS else v for k, v in state.items()}


def _set_discriminator_table(model: RTDModel, E_D: torch.Tensor) -> None:
    if model.sharing == "gdes":
        model.E_delta.copy_(E_D - model.E_G)
    elif model.sharing == "nes":
        model.discriminator.deberta.embeddings.word_embeddings.weight.copy_(E_D)
    # es: one table, the generator's (E_D and E_G differ in an export only if trained apart)


def _generator_from_encoder(
    model: RTDModel, ckpt: _Checkpoint, extension: VocabExtension | None
) -> None:
    keep = model.generator.config.num_hidden_layers
    state = {}
    for key, value in ckpt.discriminator.state_dict().items():
        if key.startswith("mask_predictions.") or key.endswith("word_embeddings.weight"):
            continue
        if key.startswith("deberta.encoder.layer."):
            if int(key.split(".")[3]) >= keep:
                continue
        state[key] = value
    state.update({k: v for k, v in ckpt.weights.items() if k.startswith("cls.predictions.")})
    _load_partial(model.generator, _grown(state, model.generator.state_dict(), extension))


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
