"""Parity with Hugging Face's DebertaV2 (fp32, 1e-5) and HF directory import/export, both ways."""

import json

import pytest
import torch
import transformers
from safetensors.torch import load_file

from mdeberta.config import ConfigError
from mdeberta.hf import config_from_hf, config_to_hf, load_pretrained, save_pretrained
from mdeberta.model import (
    DebertaConfig,
    DebertaForMaskedLM,
    DebertaForRTD,
    DebertaForSequenceClassification,
    DebertaModel,
)

ATOL = 1e-5
# v3 (mDeBERTa's layout), v2-style separate position projections with small buckets and c2p only,
# and unbucketed clamped distances with absolute positions, token types and an embedding projection
CONFIGS = {
    "v3": DebertaConfig.preset("tiny", num_hidden_layers=2),
    "v2-buckets": DebertaConfig.preset(
        "tiny",
        position_buckets=8,
        max_relative_positions=32,
        share_att_key=False,
        pos_att_type=("c2p",),
        norm_rel_ebd="none",
        hidden_act="gelu_new",
    ),
    "clamped-abs": DebertaConfig.preset(
        "tiny",
        position_buckets=-1,
        max_relative_positions=16,
        position_biased_input=True,
        type_vocab_size=2,
        embedding_size=24,
        pos_att_type=("p2c", "c2p"),
    ),
}
HF_CLASSES = {
    "base": transformers.DebertaV2Model,
    "mlm": transformers.DebertaV2ForMaskedLM,
    "classification": transformers.DebertaV2ForSequenceClassification,
}
OURS = {
    "base": DebertaModel,
    "mlm": DebertaForMaskedLM,
    "classification": DebertaForSequenceClassification,
}


def hf_model(cfg: DebertaConfig, head: str, seed: int = 0):
    torch.manual_seed(seed)
    hf_config = transformers.DebertaV2Config(**config_to_hf(cfg, "DebertaV2Model"), num_labels=3)
    model = HF_CLASSES[head](hf_config).eval()
    with torch.no_grad():  # random non-trivial LayerNorms and biases, so every parameter matters
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def padded_batch(cfg: DebertaConfig, length: int, batch: int = 3, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, cfg.vocab_size, (batch, length), generator=gen)
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(1, batch):  # later rows padded to different lengths
        mask[row, length - length * row // (batch + 1) :] = 0
    return ids.masked_fill(mask == 0, cfg.pad_token_id), mask


def outputs(model, head, ids, mask):
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
    return out.last_hidden_state if head == "base" else out.logits


def assert_close_at_tokens(a, b, mask, head):
    if head == "classification":  # pooled [CLS]: every row's [CLS] is a real token
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
    else:
        torch.testing.assert_close(a[mask.bool()], b[mask.bool()], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("head", list(HF_CLASSES))
def test_hf_to_ours_parity(tmp_path, name, head):
    cfg = CONFIGS[name]
    hf = hf_model(cfg, head)
    hf.save_pretrained(tmp_path)
    ours = load_pretrained(str(tmp_path), head=head)
    ids, mask = padded_batch(cfg, 61)
    assert_close_at_tokens(outputs(ours, head, ids, mask), outputs(hf, head, ids, mask), mask, head)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("head", list(HF_CLASSES))
def test_ours_to_hf_parity_and_clean_loading(tmp_path, name, head):
    cfg = CONFIGS[name]
    torch.manual_seed(2)
    ours = OURS[head](cfg) if head != "classification" else OURS[head](cfg, num_labels=3)
    save_pretrained(ours, str(tmp_path))
    hf, info = HF_CLASSES[head].from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    ids, mask = padded_batch(cfg, 47)
    ours.eval()
    assert_close_at_tokens(
        outputs(ours, head, ids, mask), outputs(hf.eval(), head, ids, mask), mask, head
    )


@pytest.mark.parametrize("head", ["base", "mlm"])
def test_parity_at_512_tokens_including_the_bucket_edge(head):
    # |i - j| = 511 sits exactly on a ceil() boundary of the log buckets; the table must be
    # computed as HF does or row 0 / column 511 differ
    cfg = CONFIGS["v3"].replace(num_hidden_layers=1)
    hf = hf_model(cfg, head)
    ours = OURS[head](cfg).eval()
    ours.load_state_dict(hf.state_dict(), strict=False)
    ids, mask = padded_batch(cfg, 512, batch=2)
    mask[1] = 1  # one full 512-token row, one padded row
    assert_close_at_tokens(outputs(ours, head, ids, mask), outputs(hf, head, ids, mask), mask, head)


def test_mlm_and_classifier_losses_match_hf():
    cfg = CONFIGS["v3"]
    ids, mask = padded_batch(cfg, 33)
    labels = torch.full_like(ids, -100)
    labels[:, 3:9] = ids[:, 3:9]
    for head, y in [("mlm", labels), ("classification", torch.tensor([0, 2, 1]))]:
        hf = hf_model(cfg, head)
        ours = OURS[head](cfg, 3).eval() if head == "classification" else OURS[head](cfg).eval()
        ours.load_state_dict(hf.state_dict(), strict=False)
        with torch.no_grad():
            ours_loss = ours(input_ids=ids, attention_mask=mask, labels=y).loss
            hf_loss = hf(input_ids=ids, attention_mask=mask, labels=y).loss
        torch.testing.assert_close(ours_loss, hf_loss, atol=ATOL, rtol=0)


def test_config_json_spells_out_the_fields_hf_would_default(tmp_path):
    save_pretrained(DebertaForMaskedLM(DebertaConfig.preset("tiny")), str(tmp_path))
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["model_type"] == "deberta-v2"
    assert written["architectures"] == ["DebertaV2ForMaskedLM"]
    assert written["position_buckets"] == 256 and written["norm_rel_ebd"] == "layer_norm"
    assert written["share_att_key"] is True and written["pos_att_type"] == ["p2c", "c2p"]
    assert written["relative_attention"] is True and written["position_biased_input"] is False
    assert config_from_hf(written) == DebertaConfig.preset("tiny")
    # the decoder weight is the embedding table: stored once, under the embedding's name
    keys = set(load_file(tmp_path / "model.safetensors"))
    assert "cls.predictions.bias" in keys and not any("decoder" in k for k in keys)


def test_config_from_hf_uses_hf_defaults_for_absent_fields():
    v2 = {
        "vocab_size": 50,
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "relative_attention": True,
        "pos_att_type": "p2c|c2p",
    }
    cfg = config_from_hf(v2)
    assert cfg.position_buckets == -1 and cfg.share_att_key is False
    assert cfg.norm_rel_ebd == "none" and cfg.position_biased_input is True
    assert cfg.pos_att_type == ("p2c", "c2p")
    with pytest.raises(ConfigError, match="relative-attention"):
        config_from_hf({**v2, "relative_attention": False})
    with pytest.raises(ConfigError, match="conv"):
        config_from_hf({**v2, "conv_kernel_size": 3})


def test_rtd_export_is_a_plain_encoder_with_the_head_beside_it(tmp_path):
    cfg = CONFIGS["v3"]
    torch.manual_seed(3)
    rtd = DebertaForRTD(cfg).eval()
    save_pretrained(rtd, str(tmp_path))
    hf, info = transformers.AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert type(hf).__name__ == "DebertaV2Model"
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ids, mask = padded_batch(cfg, 20)
    back = load_pretrained(str(tmp_path), head="rtd")
    with torch.no_grad():
        torch.testing.assert_close(back(ids, mask).logits, rtd(ids, mask).logits, atol=0, rtol=0)
        h = hf.eval()(input_ids=ids, attention_mask=mask).last_hidden_state
        ours_h = rtd.deberta(ids, mask).last_hidden_state
    assert_close_at_tokens(h, ours_h, mask, "base")


def test_auto_classes_and_tokenizer_files(tmp_path):
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    for name in ("spm.model", "tokenizer_config.json", "special_tokens_map.json"):
        (vocab / name).write_bytes(name.encode())
    (vocab / "report.json").write_text("{}")
    model = DebertaForSequenceClassification(CONFIGS["v3"], 3, ["entailment", "neutral", "contr"])
    out = tmp_path / "hf"
    save_pretrained(model, str(out), tokenizer_dir=str(vocab))
    assert (out / "spm.model").read_bytes() == b"spm.model"
    assert not (out / "report.json").exists() and not (out / "tokenizer.json").exists()
    hf, info = transformers.AutoModelForSequenceClassification.from_pretrained(
        out, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert hf.config.id2label == {0: "entailment", 1: "neutral", 2: "contr"}
    assert load_pretrained(str(out), head="classification").label_names == model.label_names


def test_reads_official_names_and_pytorch_bin(tmp_path):
    # official / non-legacy MLM keys (lm_predictions.lm_head.*) in a pytorch_model.bin
    cfg = CONFIGS["v3"]
    hf = hf_model(cfg, "mlm")
    state = {}
    for key, value in hf.state_dict().items():
        key = key.replace("cls.predictions.transform.", "lm_predictions.lm_head.")
        if key.startswith("cls.predictions.decoder"):
            continue
        state[key.replace("cls.predictions.bias", "lm_predictions.lm_head.bias")] = value
    torch.save(state, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps(config_to_hf(cfg, "DebertaV2ForMaskedLM")))
    ours = load_pretrained(str(tmp_path), head="mlm")
    ids, mask = padded_batch(cfg, 25)
    assert_close_at_tokens(
        outputs(ours, "mlm", ids, mask), outputs(hf, "mlm", ids, mask), mask, "mlm"
    )


def test_missing_head_is_initialised_with_a_warning_and_bad_shapes_fail(tmp_path):
    cfg = CONFIGS["v3"]
    save_pretrained(DebertaModel(cfg), str(tmp_path))
    with pytest.warns(UserWarning, match="classifier"):
        model = load_pretrained(str(tmp_path), head="classification", num_labels=3)
    assert model.num_labels == 3
    wrong = tmp_path / "wrong"
    save_pretrained(DebertaModel(cfg.replace(intermediate_size=48)), str(wrong))
    (wrong / "config.json").write_text((tmp_path / "config.json").read_text())
    with pytest.raises(ConfigError, match=r"intermediate.dense.bias \(48,\) != \(64,\)"):
        load_pretrained(str(wrong))


@pytest.mark.parametrize("name,length", [("v3", 61), ("v3", 200), ("v2-buckets", 45)])
def test_training_mode_loss_and_gradients_match_hf(name, length):
    # the grad-enabled path (strided c2p/p2c views below 129 tokens, gathers above, bias folded
    # into the score GEMM) against HF, dropout off so both are deterministic
    cfg = CONFIGS[name].replace(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    hf = hf_model(cfg, "mlm").train()
    ours = DebertaForMaskedLM(cfg).train()
    ours.load_state_dict(hf.state_dict(), strict=False)
    ids, mask = padded_batch(cfg, length, batch=2)
    labels = ids.masked_fill(mask == 0, -100)
    ours_loss = ours(input_ids=ids, attention_mask=mask, labels=labels).loss
    hf_loss = hf(input_ids=ids, attention_mask=mask, labels=labels).loss
    ours_loss.backward()
    hf_loss.backward()
    torch.testing.assert_close(ours_loss, hf_loss, atol=ATOL, rtol=0)
    hf_params = dict(hf.named_parameters())
    for key, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, hf_params[key].grad, atol=1e-5, rtol=1e-4, msg=key)


def test_round_trip_through_an_fsspec_url():
    model = DebertaForMaskedLM(CONFIGS["v3"]).eval()
    save_pretrained(model, "memory://mdeberta-test-hf/generator")
    back = load_pretrained("memory://mdeberta-test-hf/generator", head="mlm")
    ids, mask = padded_batch(CONFIGS["v3"], 12)
    torch.testing.assert_close(outputs(back, "mlm", ids, mask), outputs(model, "mlm", ids, mask))
