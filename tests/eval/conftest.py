"""Tiny models for the XNLI tests: a SentencePiece vocabulary trained here on the packaged fixture's
text, written as a tokenizer dir by vocab.tokenizer, and two 2-layer, hidden-32 encoders on it:
a transformers DebertaV2Model and one of ours exported with an hf-model manifest."""

from __future__ import annotations

import json
import shutil

import pytest

from mdeberta import resources_path
from tests.tiny_vocab import write_tiny_vocab

XNLI_FIXTURE = resources_path("xnli")


def fixture_texts() -> list[str]:
    texts = []
    with open(XNLI_FIXTURE / "xnli.dev.tsv", encoding="utf-8") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split("\t")
            texts += [fields[6], fields[7]]
    with open(XNLI_FIXTURE / "multinli.train.jsonl", encoding="utf-8") as f:
        for line in f:
            obj = json.loads(line)
            texts += [obj["sentence1"], obj["sentence2"]]
    return texts


@pytest.fixture(autouse=True)
def _one_thread():
    """The test machine's cores are shared: one torch thread avoids oversubscription stalls."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):

    out = tmp_path_factory.mktemp("vocab")
    write_tiny_vocab(
        out,
        fixture_texts(),
        1000,
        tokenizer_files=True,
        byte_fallback=True,
        character_coverage=0.9995,
        hard_vocab_limit=False,
        num_threads=1,
    )
    return out


def _rows(tokenizer_dir) -> int:
    """Embedding rows: every id of the tokenizer, [MASK] (the largest) included."""
    config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text())
    return max(int(i) for i in config["added_tokens_decoder"]) + 1


@pytest.fixture(scope="session")
def hf_model_dir(tokenizer_dir, tmp_path_factory):
    """A transformers DebertaV2Model with v3's attention settings (no classification head)."""
    import torch
    from transformers import DebertaV2Config, DebertaV2Model

    out = tmp_path_factory.mktemp("hf-model")
    config = DebertaV2Config(
        vocab_size=_rows(tokenizer_dir),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        relative_attention=True,
        position_buckets=64,
        max_relative_positions=128,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        type_vocab_size=0,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    DebertaV2Model(config).save_pretrained(out)
    for name in ("spm.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tokenizer_dir / name, out / name)
    return out


@pytest.fixture(scope="session")
def our_model_dir(tokenizer_dir, tmp_path_factory):
    """Our tiny encoder as `mdeberta export` leaves it: HF files plus an hf-model manifest."""
    import torch

    from mdeberta.hf import save_pretrained
    from mdeberta.manifest import write_manifest
    from mdeberta.model import DebertaConfig, DebertaModel

    out = tmp_path_factory.mktemp("our-model")
    torch.manual_seed(0)
    model = DebertaModel(DebertaConfig.preset("tiny", vocab_size=_rows(tokenizer_dir)))
    save_pretrained(model, str(out), tokenizer_dir=str(tokenizer_dir))
    write_manifest(str(out), "hf-model", 1, options={"preset": "tiny"})
    return out
