"""Export a run's checkpoint as Hugging Face model directories.

{out}/discriminator/   E_D = E_G + E_delta merged into the word embeddings; loads with
                       transformers.AutoModel (the RTD head rides along in rtd_head.safetensors)
{out}/generator/       loads with transformers.AutoModelForMaskedLM
each with the tokenizer files of the vocabulary the shards were made with, and a manifest
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from mdeberta import hf, io
from mdeberta.config import from_dict
from mdeberta.lock import locks_output
from mdeberta.manifest import file_records, invalidate, write_manifest
from mdeberta.model import DebertaForRTD
from mdeberta.rtd import RTDModel
from mdeberta.train import checkpoint as ckpt
from mdeberta.train.build import RUN_INFO, build_model, load_model_configs
from mdeberta.train.config import TrainConfig

FORMAT_VERSION = 1
HF_FILES = ("config.json", hf.WEIGHTS, hf.RTD_HEAD)  # what hf.save_pretrained writes


def load_run(run_dir: str, checkpoint: str | None = None) -> tuple[RTDModel, dict, int]:
    """(model in eval mode on CPU, run.json, step) from a checkpoint (default: the newest whose
    weights verify; newer ones that do not are named, one line each)."""
    if checkpoint is not None:
        weights = ckpt.read_weights(checkpoint)
    elif (found := ckpt.newest_that_loads(run_dir, ckpt.read_weights)) is not None:
        checkpoint, weights, failures = found
        for bad, why in failures:
            print(f"mdeberta: skipped {bad}: {why}", file=sys.stderr)
    else:
        raise FileNotFoundError(f"{run_dir}: no complete checkpoint under {ckpt.CHECKPOINTS}/")
    info = io.read_json(io.join(run_dir, RUN_INFO))
    cfg = from_dict(TrainConfig, info["config"], source=io.join(run_dir, RUN_INFO))
    disc_cfg, gen_cfg = load_model_configs(info)
    model = build_model(cfg, disc_cfg, gen_cfg, info["vocab"])
    model.load_state_dict(weights)
    return model.eval(), info, ckpt.read_meta(checkpoint)["step"]


def merged_discriminator(model: RTDModel):
    """A standalone DebertaForRTD whose word embeddings are E_D (E_G + E_delta for gdes)."""
    disc = DebertaForRTD(model.discriminator.config)
    state = {
        k: v
        for k, v in model.discriminator.state_dict().items()
        if not k.endswith("word_embeddings.E_delta")
    }
    state["deberta.embeddings.word_embeddings.weight"] = model.discriminator_embeddings()
    disc.load_state_dict(state)
    return disc.eval()


def _tokenizer_dir(info: dict, tokenizer: str | None) -> str | None:
    candidate = tokenizer or info["vocab"].get("url")
    if candidate and any(io.exists(io.join(candidate, f)) for f in hf.TOKENIZER_FILES):
        return candidate
    if tokenizer:
        raise FileNotFoundError(f"{tokenizer}: none of {hf.TOKENIZER_FILES} found")
    print(
        f"warning: vocabulary dir {candidate!r} from the shards' manifest has no tokenizer files; "
        "exporting weights only (pass --tokenizer VOCAB_DIR to add them)",
        file=sys.stderr,
    )
    return None


@locks_output("output")
@torch.no_grad()
def export_run(
    run_dir: str, output: str, *, checkpoint: str | None = None, tokenizer: str | None = None
) -> dict[str, Any]:
    """Write {output}/discriminator and {output}/generator; return what was written."""
    model, info, step = load_run(run_dir, checkpoint)
    tokenizer_dir = _tokenizer_dir(info, tokenizer)
    written = {}
    for name, module, head in (
        ("discriminator", merged_discriminator(model), "AutoModel"),
        ("generator", model.generator, "AutoModelForMaskedLM"),
    ):
        path = io.join(output, name)
        invalidate(path)  # an interrupted re-export must not look complete
        hf.save_pretrained(module, path, tokenizer_dir=tokenizer_dir)
        write_manifest(
            path,
            "hf-model",
            FORMAT_VERSION,
            {"run": str(run_dir), "step": step},
            files=file_records(path, [*HF_FILES, *hf.TOKENIZER_FILES]),
            extra={
                "loads_with": head,
                "role": name,
                "sharing": model.sharing,
                "tokenizer": tokenizer_dir,
                "vocab": info["vocab"],
            },
        )
        written[name] = path
    return {"step": step, **written}
