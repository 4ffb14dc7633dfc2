"""Hugging Face DebertaV2 directories in and out: config.json + model.safetensors (+ tokenizer).

    model = load_pretrained("microsoft-mdeberta-v3-base/", head="classification", num_labels=3)
    save_pretrained(model, "out/hf", tokenizer_dir="vocab/")   # AutoModel* load it, no warnings

Our module names are HF's, so weights map one to one. What this module adds:
  * config.json always spells out position_buckets, norm_rel_ebd, share_att_key and pos_att_type:
    HF reads them with getattr defaults and silently builds a different model when they are absent.
  * The generator's head is written under HF's legacy `cls.predictions.*` names, which every
    transformers version from 4.x to 5.x loads; the official/non-legacy `lm_predictions.lm_head.*`
    names are read too. The decoder weight is the word-embedding table and is not stored twice.
  * The discriminator is written as a plain DebertaV2Model (what AutoModel loads); its RTD head,
    which HF has no class for, goes beside it in rtd_head.safetensors.
  * The official trainer's continue-training layout (microsoft/DeBERTa, rtd.sh `*-continue`):
    `pytorch_model.bin` (the discriminator: `deberta.*`, `mask_predictions.*` with the head's
    `classifer` typo, GDES's E_Δ as `deberta.embeddings.word_embeddings._weight`) beside
    `pytorch_model.generator.bin` (the generator: `deberta.*`, `lm_predictions.lm_head.*`, and the
    absolute position table its EMD reads, which HF's and our MLM head do not use). The generator's
    sizes are read from its weights (its depth, width, FFN width; head size as the
    discriminator's): no config of it is published. Both load with `weights_only=True`.
Every path may be an fsspec URL. Files are written under temporary names and renamed into place;
writing the artifact manifest is left to the caller, which knows the inputs.
"""

from __future__ import annotations

import io as _io
import pickle
import warnings

import torch
from torch import nn

from mdeberta import io
from mdeberta.config import ConfigError, check
from mdeberta.model import (
    DebertaConfig,
    DebertaForMaskedLM,
    DebertaForRTD,
    DebertaForSequenceClassification,
    DebertaModel,
)

WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
TORCH_WEIGHTS = "pytorch_model.bin"
OFFICIAL_GENERATOR = "pytorch_model.generator.bin"  # beside TORCH_WEIGHTS in the official layout
# the official GDES discriminator's E_delta: its word table's `_weight` (`weight` is E_G + E_delta)
_E_DELTA = "embeddings.word_embeddings._weight"
_WORD_TABLE = "deberta.embeddings.word_embeddings.weight"
RTD_HEAD = "rtd_head.safetensors"
TOKENIZER_FILES = (
    "spm.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)
HEADS = {
    "base": (DebertaModel, "DebertaV2Model"),
    "mlm": (DebertaForMaskedLM, "DebertaV2ForMaskedLM"),
    "rtd": (DebertaForRTD, "DebertaV2Model"),
    "classification": (DebertaForSequenceClassification, "DebertaV2ForSequenceClassification"),
}
# other spellings of our keys: HF's non-legacy MLM head, the official RTD head's typo
_ALIASES = {
    "lm_predictions.lm_head.dense.": "cls.predictions.transform.dense.",
    "lm_predictions.lm_head.LayerNorm.": "cls.predictions.transform.LayerNorm.",
    "lm_predictions.lm_head.bias": "cls.predictions.bias",
    "mask_predictions.classifer.": "mask_predictions.classifier.",
}
# in HF checkpoints but not parameters here: buffers, the tied decoder, unused absolute positions
_IGNORED = (
    "embeddings.position_ids",
    "cls.predictions.decoder.",
    "embeddings.position_embeddings.",
)
_HEAD_PREFIXES = ("cls.", "lm_predictions.", "mask_predictions.", "pooler.", "classifier.")


# config.json


def config_from_hf(hf: dict) -> DebertaConfig:
    """Our config from a DebertaV2 config.json dict, with HF's own defaults for absent fields."""
    check(
        hf.get("relative_attention", False), "only relative-attention DeBERTa models are supported"
    )
    check(
        hf.get("conv_kernel_size", 0) <= 0,
        "DeBERTa-v2's conv layer (conv_kernel_size) is not supported",
    )
    heads, hidden = hf["num_attention_heads"], hf["hidden_size"]
    check(
        hf.get("attention_head_size", hidden // heads) * heads == hidden,
        "attention_head_size * num_attention_heads must equal hidden_size",
    )
    pos_att_type = hf.get("pos_att_type") or []
    if isinstance(pos_att_type, str):
        pos_att_type = pos_att_type.lower().split("|")
    norm_parts = [p.strip() for p in str(hf.get("norm_rel_ebd", "none")).lower().split("|")]
    embedding_size = hf.get("embedding_size")
    fields = {
        "vocab_size": hf["vocab_size"],
        "hidden_size": hidden,
        "num_hidden_layers": hf["num_hidden_layers"],
        "num_attention_heads": heads,
        "intermediate_size": hf["intermediate_size"],
        "hidden_act": hf.get("hidden_act", "gelu"),
        "hidden_dropout_prob": hf.get("hidden_dropout_prob", 0.1),
        "attention_probs_dropout_prob": hf.get("attention_probs_dropout_prob", 0.1),
        "max_position_embeddings": hf.get("max_position_embeddings", 512),
        # HF's getattr defaults, which differ from the v3 values: absent means v2-style
        "position_buckets": hf.get("position_buckets", -1),
        "max_relative_positions": hf.get("max_relative_positions", -1),
        "share_att_key": hf.get("share_att_key", False),
        "pos_att_type": tuple(p.strip() for p in pos_att_type),
        "norm_rel_ebd": "layer_norm" if "layer_norm" in norm_parts else "none",
        "position_biased_input": hf.get("position_biased_input", True),
        "type_vocab_size": hf.get("type_vocab_size", 0),
        "embedding_size": None if embedding_size in (None, hidden) else embedding_size,
        "layer_norm_eps": hf.get("layer_norm_eps", 1e-7),
        "pad_token_id": hf.get("pad_token_id") or 0,
        "initializer_range": hf.get("initializer_range", 0.02),
        "pooler_dropout": hf.get("pooler_dropout", 0.0),
        "pooler_hidden_act": hf.get("pooler_hidden_act", "gelu"),
        "cls_dropout": hf.get("cls_dropout"),
    }
    check(
        hf.get("pooler_hidden_size", hidden) == hidden, "pooler_hidden_size must equal hidden_size"
    )
    return DebertaConfig(**fields)


def config_to_hf(config: DebertaConfig, architecture: str) -> dict:
    """A DebertaV2 config.json dict that rebuilds exactly this model in transformers."""
    hf = {k: v for k, v in vars(config).items() if v is not None}
    hf.update(
        model_type="deberta-v2",
        architectures=[architecture],
        pos_att_type=list(config.pos_att_type),
        relative_attention=True,
        pooler_hidden_size=config.hidden_size,
        legacy=True,  # the cls.predictions.* MLM head
        tie_word_embeddings=True,
    )
    return hf


# weights


def read_weights(path: str) -> dict[str, torch.Tensor]:
    """All tensors of an HF model dir: model.safetensors, its sharded form, or pytorch_model.bin."""

    def read(name: str) -> dict[str, torch.Tensor]:
        url = io.join(path, name)
        return read_torch(url) if name.endswith(".bin") else _read_safetensors(url)

    if io.exists(io.join(path, WEIGHTS_INDEX)):
        shards = sorted(set(io.read_json(io.join(path, WEIGHTS_INDEX))["weight_map"].values()))
        return {k: v for shard in shards for k, v in read(shard).items()}
    for name in (WEIGHTS, TORCH_WEIGHTS):
        if io.exists(io.join(path, name)):
            return read(name)
    raise FileNotFoundError(f"{path}: no {WEIGHTS}, {WEIGHTS_INDEX} or {TORCH_WEIGHTS}")


def read_torch(url: str) -> dict[str, torch.Tensor]:
    """A pytorch_model*.bin state dict, loaded with weights_only=True (tensors only: no code from
    the file runs); anything else is a one-line error naming the file."""
    try:
        state = _torch_load(url)
    except pickle.UnpicklingError:
        raise ValueError(
            f"{url}: holds objects other than tensors; not loaded (weights_only=True: loading "
            "them would run code from the file)"
        ) from None
    except OSError:
        raise
    except Exception as e:  # torch's readers fail on a foreign file with whatever they hit
        reason = ": ".join(filter(None, [type(e).__name__, " ".join(str(e).split())[:160]]))
        raise ValueError(f"{url}: not a PyTorch state dict ({reason})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{url}: not a state dict of tensors only ({type(state).__name__})")
    return state


def _torch_load(url: str):
    load = {"map_location": "cpu", "weights_only": True}
    if io.is_local(url):
        path = io.url_to_fs(url)[1]
        try:  # memory-mapped: reading the generator's shapes for its config costs nothing
            return torch.load(path, mmap=True, **load)
        except RuntimeError:  # a file in the pre-1.6 format cannot be memory-mapped
            pass
    with io.open_file(url, "rb", compression=None) as f:
        return torch.load(_io.BytesIO(f.read()), **load)


def _canonical(key: str, encoder_prefix: str) -> str:
    """Our name for an HF key, with encoder keys under encoder_prefix ("" or "deberta.")."""
    for old, new in _ALIASES.items():
        if key.startswith(old):
            key = new + key[len(old) :]
    key = key.removeprefix("deberta.")
    return key if key.startswith(_HEAD_PREFIXES) else encoder_prefix + key


def load_state(model: nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
    """Copy HF-named weights into `model`; returns the head parameters that were missing (left at
    their initial values). Missing encoder weights or mismatched shapes are errors."""
    prefix = "" if isinstance(model, DebertaModel) else "deberta."
    own = model.state_dict()
    state, unexpected, mismatched = {}, [], []
    for key, tensor in sorted(weights.items()):
        name = _canonical(key, prefix)
        if name not in own:  # other heads' weights are fine; unknown encoder weights are not
            bare = name.removeprefix(prefix)
            if not bare.startswith(_HEAD_PREFIXES) and not bare.startswith(_IGNORED):
                unexpected.append(key)
        elif tensor.shape != own[name].shape:
            mismatched.append(f"{key} {tuple(tensor.shape)} != {tuple(own[name].shape)}")
        else:
            state[name] = tensor.to(own[name].dtype)
    check(not mismatched, f"checkpoint shapes differ from the config's: {mismatched[:8]}")
    missing = sorted(set(own) - set(state))
    encoder_missing = [k for k in missing if not k.startswith(_HEAD_PREFIXES)]
    if encoder_missing or unexpected:
        raise ValueError(
            f"checkpoint does not match the config: missing {encoder_missing[:8]}, "
            f"unexpected {unexpected[:8]}"
        )
    model.load_state_dict(state, strict=False)
    return missing


def load_pretrained(path: str, head: str = "base", num_labels: int | None = None) -> nn.Module:
    """Our model (fp32, eval mode) from any HF DebertaV2 directory or URL.

    head: "base" (DebertaModel), "mlm", "rtd" or "classification". A head whose weights the
    checkpoint lacks (e.g. a classifier on microsoft/mdeberta-v3-base) is freshly initialised, with
    a warning. num_labels defaults to the checkpoint's id2label, else 2."""
    check(head in HEADS, f"head must be one of {list(HEADS)}, got {head!r}")
    hf_config = io.read_json(io.join(path, "config.json"))
    config = config_from_hf(hf_config)
    cls = HEADS[head][0]
    if head == "classification":
        num_labels, names = _label_names(hf_config, num_labels)
        model = cls(config, num_labels, names)
    else:
        model = cls(config)
    weights = read_weights(path)
    if head == "rtd" and io.exists(io.join(path, RTD_HEAD)):
        weights.update(_read_safetensors(io.join(path, RTD_HEAD)))
    missing = load_state(model, weights)
    if missing:
        warnings.warn(f"{path}: no weights for {missing}; initialised fresh", stacklevel=2)
    return model.eval()


# the official continue-training layout


def is_official(path: str) -> bool:
    """Whether `path` holds the official layout: a generator beside the discriminator."""
    return io.exists(io.join(path, OFFICIAL_GENERATOR))


def generator_config(discriminator: DebertaConfig, weights: dict) -> DebertaConfig:
    """The official generator's config: the discriminator's, with the depth, widths and vocabulary
    its weights have (heads of the discriminator's head size)."""
    keys = {_canonical(k, "deberta."): v for k, v in weights.items()}
    layers = {int(k.split(".")[3]) for k in keys if k.startswith("deberta.encoder.layer.")}
    needed = (_WORD_TABLE, "deberta.embeddings.LayerNorm.weight")
    if not layers or any(k not in keys for k in needed):
        raise ValueError(
            f"{OFFICIAL_GENERATOR} has no DeBERTa encoder weights (deberta.encoder.layer.*, "
            f"{_WORD_TABLE}); found {sorted(keys)[:6]}"
        )
    rows, width = keys[_WORD_TABLE].shape
    hidden = keys["deberta.embeddings.LayerNorm.weight"].shape[0]
    head_size = discriminator.hidden_size // discriminator.num_attention_heads
    return discriminator.replace(
        vocab_size=rows,
        hidden_size=hidden,
        num_hidden_layers=max(layers) + 1,
        num_attention_heads=hidden // head_size,
        intermediate_size=keys["deberta.encoder.layer.0.intermediate.dense.weight"].shape[0],
        embedding_size=None if width == hidden else width,
    )


def load_official(path: str) -> tuple[DebertaForRTD, DebertaForMaskedLM, bool]:
    """(discriminator, generator, whether the RTD head was in the checkpoint) of an official
    continue-training directory; E_D is the merged table, or E_G + E_delta when only E_delta was
    saved (how the official trainer's GDES state dict holds it)."""
    disc_config = config_from_hf(io.read_json(io.join(path, "config.json")))
    gen_weights = read_torch(io.join(path, OFFICIAL_GENERATOR))
    generator = DebertaForMaskedLM(generator_config(disc_config, gen_weights))
    _load_reporting(generator, gen_weights, io.join(path, OFFICIAL_GENERATOR))
    weights = {_canonical(k, "deberta."): v for k, v in read_weights(path).items()}
    delta = weights.pop("deberta." + _E_DELTA, None)
    if _WORD_TABLE not in weights and delta is not None:
        weights[_WORD_TABLE] = generator.deberta.embeddings.word_embeddings.weight + delta
    discriminator = DebertaForRTD(disc_config)
    _load_reporting(discriminator, weights, path)
    head = any(k.startswith("mask_predictions.") for k in weights)
    return discriminator.eval(), generator.eval(), head


def _load_reporting(model: nn.Module, weights: dict, where: str) -> None:
    try:
        missing = load_state(model, weights)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    if missing and not all(k.startswith("mask_predictions.") for k in missing):
        warnings.warn(f"{where}: no weights for {missing}; initialised fresh", stacklevel=3)


def _label_names(hf_config: dict, num_labels: int | None) -> tuple[int, list[str] | None]:
    """num_labels (argument, else the checkpoint's id2label, else 2) and names if all are known."""
    id2label = {int(i): name for i, name in (hf_config.get("id2label") or {}).items()}
    num_labels = num_labels or len(id2label) or 2
    names = [id2label.get(i) for i in range(num_labels)]
    return num_labels, None if None in names else names


def _read_safetensors(url: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load, load_file

    if io.is_local(url):  # memory-mapped
        return load_file(io.url_to_fs(url)[1])
    with io.open_file(url, "rb", compression=None) as f:
        return load(f.read())


def _write_safetensors(url: str, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save

    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, {"format": "pt"})
    with io.atomic_write(url, "wb", compression=None) as f:
        f.write(data)


def save_pretrained(model: nn.Module, path: str, tokenizer_dir: str | None = None) -> None:
    """Write `model` as an HF DebertaV2 directory (config.json, model.safetensors, and for the
    discriminator rtd_head.safetensors), copying the tokenizer files found in tokenizer_dir."""
    kind = next((k for k, (cls, _) in HEADS.items() if type(model) is cls), None)
    check(kind is not None, f"cannot export a {type(model).__name__}")
    state = model.state_dict()
    if kind == "rtd":  # AutoModel gets the bare encoder; the head goes beside it
        head = {k: v for k, v in state.items() if k.startswith("mask_predictions.")}
        state = {k.removeprefix("deberta."): v for k, v in state.items() if k not in head}
        _write_safetensors(io.join(path, RTD_HEAD), head)
    hf = config_to_hf(model.config, HEADS[kind][1])
    if kind == "classification":
        hf["id2label"] = dict(enumerate(model.label_names))
        hf["label2id"] = {name: i for i, name in enumerate(model.label_names)}
    _write_safetensors(io.join(path, WEIGHTS), state)
    io.write_json(io.join(path, "config.json"), hf)
    if tokenizer_dir is not None:
        copy_tokenizer(tokenizer_dir, path)


def copy_tokenizer(tokenizer_dir: str, path: str) -> list[str]:
    """Copy the tokenizer files present in tokenizer_dir; returns their names."""
    copied = [name for name in TOKENIZER_FILES if io.exists(io.join(tokenizer_dir, name))]
    if not copied:
        raise ConfigError(f"{tokenizer_dir}: none of {TOKENIZER_FILES} found")
    for name in copied:
        with io.open_file(io.join(tokenizer_dir, name), "rb", compression=None) as src:
            data = src.read()
        with io.atomic_write(io.join(path, name), "wb", compression=None) as dst:
            dst.write(data)
    return copied
