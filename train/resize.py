"""Continuing from a model on shards of an extended vocabulary (`mdeberta extend-vocab`).

    extension = find_extension(model_dir, shards_manifest, shards_url, vocab=None)
    E_G = grow_rows(E_G_old, E_G_fresh, extension)

The shards' vocabulary is the model's own (None: nothing to resize), an extension of it (its
manifest's `extension.base.spm_sha256` is the sha256 of the model's spm.model), or neither, which
is refused naming both. The extended vocabulary directory is `--vocab` when given, else the one
the shards' manifest names; its extension.json (checked against its manifest) lists every new
piece's id and the ids of its segmentation under the base tokenizer.

Growing a vocabulary-sized tensor (E_G, E_D and so E_delta, the generator's output bias): base
rows are copied, each new piece's row is the mean of the rows of its base segmentation (a new
piece starts where the model's reading of the same characters was), and rows past both (padding
to model.vocab_multiple, never sampled) keep the new model's initial values.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch

from mdeberta import io
from mdeberta.config import ConfigError
from mdeberta.manifest import read_manifest, verify_files
from mdeberta.shards import VocabMismatchError

MODEL_VOCAB = "spm.model"


@dataclass(frozen=True)
class VocabExtension:
    """An extended vocabulary as the trainer needs it."""

    vocab: str
    """The extended vocabulary directory."""
    base_sha256: str
    """sha256 of the base's spm.model (the model's)."""
    base_vocab_size: int
    """Ids of the base tokenizer, [MASK] included: every base id is below it."""
    new_ids: tuple[int, ...]
    """Ids of the new pieces."""
    base_ids: tuple[tuple[int, ...], ...]
    """Each new piece's segmentation under the base tokenizer."""

    def summary(self) -> dict[str, Any]:
        """What run.json records of it."""
        return {
            "vocab": self.vocab,
            "base_sha256": self.base_sha256,
            "base_vocab_size": self.base_vocab_size,
            "added": len(self.new_ids),
        }


def read_extension(vocab: str) -> VocabExtension | None:
    """The extension record of a vocabulary directory, or None if it is not an extension."""
    manifest = read_manifest(vocab, kind="vocabulary")
    block = manifest.get("extension")
    if not block:
        return None
    name = block["file"]
    verify_files(vocab, {name: manifest["files"][name]})  # checksums verified on read
    body = io.read_json(io.join(vocab, name))
    base = body["base"]
    return VocabExtension(
        vocab=str(vocab),
        base_sha256=base["spm_sha256"],
        base_vocab_size=int(base["vocab_size"]),
        new_ids=tuple(int(p["id"]) for p in body["pieces"]),
        base_ids=tuple(tuple(int(i) for i in p["base_ids"]) for p in body["pieces"]),
    )


def find_extension(
    model_dir: str, shards_manifest: dict, shards_url: str, vocab: str | None = None
) -> VocabExtension | None:
    """None if the shards use the model's vocabulary (or, without the model's spm.model, it cannot
    be told: a warning); the extension if theirs extends it; else VocabMismatchError."""
    shards = shards_manifest["vocab"]
    where = io.join(shards_url, "manifest.json")
    model_vocab = io.join(model_dir, MODEL_VOCAB)
    model_sha = io.sha256_file(model_vocab) if io.exists(model_vocab) else None
    if model_sha == shards["sha256"]:
        return None
    vocab_dir = vocab or shards.get("url")
    extension = _extension_of(vocab_dir, shards["sha256"]) if vocab_dir else None
    if model_sha is None:
        if extension is not None:
            raise ConfigError(
                f"{model_dir} has no {MODEL_VOCAB}: cannot check that the shards' vocabulary "
                f"({vocab_dir}) extends the model's. Copy the base vocabulary's spm.model there"
            )
        warnings.warn(
            f"{model_dir} has no {MODEL_VOCAB}: cannot check the shards' vocabulary", stacklevel=2
        )
        return None
    if extension is None:
        raise VocabMismatchError(
            f"vocabulary mismatch: {where} was made with vocabulary sha256 {shards['sha256']} "
            f"({shards.get('url')}), which is neither the model's ({model_vocab}, sha256 "
            f"{model_sha}) nor an extension of it (mdeberta extend-vocab; pass its directory "
            "with --vocab if it has moved)"
        )
    if extension.base_sha256 != model_sha:
        raise VocabMismatchError(
            f"vocabulary mismatch: the shards' vocabulary {vocab_dir} extends the vocabulary with "
            f"sha256 {extension.base_sha256}, but the model's ({model_vocab}) has sha256 "
            f"{model_sha}; continue from the model the extension was made for"
        )
    return extension


def _extension_of(vocab_dir: str, shards_sha: str) -> VocabExtension | None:
    """The extension in vocab_dir if it is the shards' vocabulary and an extension, else None."""
    if not io.exists(io.join(vocab_dir, "manifest.json")):
        return None
    if read_manifest(vocab_dir, kind="vocabulary").get("spm_sha256") != shards_sha:
        return None
    return read_extension(vocab_dir)


def check_rows(extension: VocabExtension, rows: int, model_dir: str) -> None:
    """The model's tables must hold every base id."""
    if rows < extension.base_vocab_size:
        raise ConfigError(
            f"--init-from {model_dir}: {rows} embedding rows cannot hold the base vocabulary's "
            f"{extension.base_vocab_size} ids"
        )


def grow_rows(old: torch.Tensor, fresh: torch.Tensor, extension: VocabExtension) -> torch.Tensor:
    """`fresh` (the new model's own table or bias) with `old`'s rows copied over it and each new
    piece's row the mean of `old`'s rows of its base segmentation."""
    out = fresh.detach().clone()
    out[: old.shape[0]] = old
    if not extension.new_ids:
        return out
    lengths = torch.tensor([len(ids) for ids in extension.base_ids])
    flat = torch.tensor([i for ids in extension.base_ids for i in ids])
    owner = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
    sums = torch.zeros((len(lengths), *old.shape[1:]), dtype=torch.float64)
    sums.index_add_(0, owner, old[flat].double())
    means = sums / lengths.view(-1, *([1] * (old.ndim - 1)))
    out[torch.tensor(extension.new_ids)] = means.to(out.dtype)
    return out
