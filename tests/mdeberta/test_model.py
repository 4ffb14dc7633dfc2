"""The encoder and heads on their own: config, relative positions, masking, heads, bf16, compile."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from transformers.models.deberta_v2.modeling_deberta_v2 import make_log_bucket_position

from mdeberta.attention import log_bucket_position, relative_positions
from mdeberta.config import ConfigError, field_docs
from mdeberta.model import (
    PRESETS,
    DebertaConfig,
    DebertaForMaskedLM,
    DebertaForRTD,
    DebertaForSequenceClassification,
    DebertaModel,
)
from mdeberta.precision import autocast
from mdeberta.rtd import rtd_loss

TINY = DebertaConfig.preset("tiny")


def batch(length=24, rows=2, vocab=TINY.vocab_size, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (rows, length), generator=gen)
    mask = torch.ones(rows, length, dtype=torch.long)
    mask[rows - 1, length // 2 :] = 0  # the last row is half padding
    return ids, mask


def test_defaults_are_mdeberta_v3_base():
    cfg = DebertaConfig()
    assert (cfg.vocab_size, cfg.num_hidden_layers, cfg.hidden_size) == (251000, 12, 768)
    assert (cfg.num_attention_heads, cfg.intermediate_size) == (12, 3072)
    assert (cfg.position_buckets, cfg.max_relative_positions, cfg.layer_norm_eps) == (
        256,
        512,
        1e-7,
    )
    assert cfg.share_att_key and cfg.norm_rel_ebd == "layer_norm"
    assert set(cfg.pos_att_type) == {"c2p", "p2c"} and not cfg.position_biased_input
    assert DebertaConfig.preset("base") == cfg
    assert DebertaConfig.preset("large").hidden_size == 1024 and set(PRESETS) >= {"tiny", "xsmall"}


def test_every_field_is_documented_and_bad_values_are_named():
    docs = field_docs(DebertaConfig)
    assert all(docs.get(f.name) for f in dataclasses.fields(DebertaConfig))
    for bad, word in [
        (dict(hidden_size=100, num_attention_heads=12), "hidden_size"),
        (dict(pos_att_type=("c2p", "p2p")), "pos_att_type"),
        (dict(hidden_dropout_prob=1.0), "hidden_dropout_prob"),
        (dict(hidden_act="gleu"), "hidden_act"),
        (dict(norm_rel_ebd="batch_norm"), "norm_rel_ebd"),
    ]:
        with pytest.raises(ConfigError, match=word):
            DebertaConfig(**bad)
    with pytest.raises(ConfigError, match="preset"):
        DebertaConfig.preset("huge")


@pytest.mark.parametrize("bucket_size,max_position", [(256, 512), (8, 32), (16, 100)])
def test_log_buckets_match_hf(bucket_size, max_position):
    rel = torch.arange(-2000, 2001)
    expected = make_log_bucket_position(rel, bucket_size, max_position).long()
    assert torch.equal(log_bucket_position(rel, bucket_size, max_position), expected)


@pytest.mark.parametrize("length", [1, 7, 128, 129, 200, 511, 512, 700])
@pytest.mark.parametrize("span,buckets,max_position", [(256, 256, 512), (8, 8, 32), (16, -1, 16)])
def test_projected_rows_cover_every_index(length, span, buckets, max_position):
    pos = relative_positions(length, span, buckets, max_position, torch.device("cpu"))
    rows = pos.stop - pos.start
    assert rows <= min(2 * span, 2 * length + 2)  # never more than a length-L input can reach
    for index in (pos.c2p_index, pos.p2c_index):
        assert index.shape == (length, length)
        assert 0 <= index.min() and index.max() < rows


@pytest.mark.parametrize("cls", [DebertaModel, DebertaForMaskedLM, DebertaForRTD])
def test_shapes_and_inputs_embeds(cls):
    model = cls(TINY).eval()
    ids, mask = batch()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
        embeds = F.embedding(
            ids,
            model.get_submodule(
                "deberta" if cls is not DebertaModel else ""
            ).embeddings.word_embeddings.weight,
        )
        again = model(inputs_embeds=embeds, attention_mask=mask)
    result = out.last_hidden_state if cls is DebertaModel else out.logits
    expected = {
        DebertaModel: (2, 24, 32),
        DebertaForMaskedLM: (2, 24, 1000),
        DebertaForRTD: (2, 24),
    }
    assert result.shape == expected[cls]
    other = again.last_hidden_state if cls is DebertaModel else again.logits
    torch.testing.assert_close(result, other)
    with pytest.raises(ValueError, match="exactly one"):
        model(input_ids=ids, inputs_embeds=embeds)


def test_padding_does_not_change_real_tokens():
    model = DebertaModel(TINY).eval()
    ids = batch(length=30)[0][:1]
    padded = torch.cat([ids, torch.zeros(1, 9, dtype=torch.long)], 1)
    mask = torch.cat([torch.ones(1, 30), torch.zeros(1, 9)], 1).long()
    with torch.no_grad():
        short = model(ids).last_hidden_state
        long = model(padded, attention_mask=mask).last_hidden_state
        all_pad = model(padded, attention_mask=torch.zeros_like(mask)).last_hidden_state
    torch.testing.assert_close(long[:, :30], short, atol=1e-5, rtol=0)
    assert torch.isfinite(all_pad).all()


def test_mlm_logits_at_positions_give_the_same_logits_and_loss():
    model = DebertaForMaskedLM(TINY).eval()
    ids, mask = batch()
    labels = torch.full_like(ids, -100)
    labels[0, [2, 5]] = ids[0, [2, 5]]
    labels[1, 3] = 7
    positions = (labels != -100).flatten().nonzero().squeeze(1)
    with torch.no_grad():
        full = model(ids, mask, labels=labels)
        masked = model(ids, mask, labels=labels, positions=positions)
    assert masked.logits.shape == (3, TINY.vocab_size)
    torch.testing.assert_close(masked.logits, full.logits[labels != -100])
    torch.testing.assert_close(masked.loss, full.loss)


def test_rtd_head_follows_the_official_definition():
    model = DebertaForRTD(TINY).eval()
    ids, mask = batch()
    with torch.no_grad():
        out = model(ids, mask)
        h = out.last_hidden_state
        head = model.mask_predictions
        x = head.LayerNorm(h[:, :1] + h)  # [CLS] broadcast onto every token
        logits = head.classifier(F.gelu(head.dense(x))).squeeze(-1)
    torch.testing.assert_close(out.logits, logits)
    assert (
        out.loss is None
    )  # the one RTD loss is mdeberta.rtd.rtd_loss (tests/mdeberta/test_rtd.py)


def test_classifier_ignores_negative_labels_and_regresses_with_one_label():
    ids, mask = batch(rows=3)
    mask[2] = 1
    model = DebertaForSequenceClassification(TINY, num_labels=3).eval()
    with torch.no_grad():
        out = model(ids, mask, labels=torch.tensor([2, -1, 0]))
    expected = F.cross_entropy(out.logits[[0, 2]], torch.tensor([2, 0]))
    torch.testing.assert_close(out.loss, expected)
    regressor = DebertaForSequenceClassification(TINY, num_labels=1).eval()
    with torch.no_grad():
        out = regressor(ids, mask, labels=torch.tensor([0.5, 1.0, -2.0]))
    assert out.logits.shape == (3, 1) and out.loss.ndim == 0


def test_every_parameter_gets_a_gradient():
    model = DebertaForMaskedLM(TINY).train()
    ids, mask = batch()
    model(ids, mask, labels=ids.masked_fill(mask == 0, -100)).loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert no_grad == []


# Attention scores near 1e4 (fp16 overflows at 65504): logits stay finite and near fp32. Mean,
# not max, error: where two keys score within the dtype's step (1e4 · 2^-8 in bf16) the softmax
# may pick the other one, and a near-one-hot row then changes whole.
TOLERANCE = {"bf16": dict(logits=3e-3, loss=1e-3), "fp16": dict(logits=3e-4, loss=1e-4)}


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_stays_finite_and_near_fp32_with_scores_near_1e4(precision):
    torch.manual_seed(0)
    model = DebertaForMaskedLM(
        TINY.replace(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ).train()
    with torch.no_grad():
        for layer in model.deberta.encoder.layer:
            layer.attention.self.query_proj.weight.mul_(600)
            layer.attention.self.key_proj.weight.mul_(600)
    ids, mask = batch(length=64)  # the second row is half padding
    embeds = 1e4 * torch.randn(2, 64, TINY.hidden_size)
    with torch.no_grad():  # layer 0's c2c scores, as the attention scales them
        attention = model.deberta.encoder.layer[0].attention.self
        x = model.deberta.embeddings(None, embeds, mask)
        heads = lambda t: t.unflatten(-1, (TINY.num_attention_heads, -1)).transpose(1, 2)  # noqa: E731
        q, k = heads(attention.query_proj(x)), heads(attention.key_proj(x))
        scores = q @ k.transpose(-1, -2) / (3 * q.shape[-1]) ** 0.5
    assert 5e3 < scores.abs().max() < 6e4
    runs = {}
    for name in ("fp32", precision):
        model.zero_grad()
        with autocast(name, "cpu"):
            out = model(inputs_embeds=embeds, attention_mask=mask, labels=ids)
        out.loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
        assert all(torch.isfinite(g).all() for g in grads)
        runs[name] = out.logits.detach().float(), out.loss.detach()
    (logits, loss), (ref_logits, ref_loss) = runs[precision], runs["fp32"]
    assert (logits - ref_logits).abs().mean() < TOLERANCE[precision]["logits"]
    assert abs(loss - ref_loss) / ref_loss < TOLERANCE[precision]["loss"]


def test_torch_compile_traces_one_graph_with_backward():
    # fullgraph: any graph break is an error. aot_eager traces forward and backward like inductor
    # does but skips C++ code generation (minutes on this CPU; benchmarks/model.py times inductor)
    no_dropout = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = DebertaForRTD(TINY.replace(num_hidden_layers=1, **no_dropout)).train()
    ids, mask = batch(length=16)
    labels = torch.randint(0, 2, ids.shape)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    torch.manual_seed(0)
    loss = rtd_loss(compiled(ids, mask).logits, labels, mask > 0)
    loss.backward()
    torch.manual_seed(0)
    torch.testing.assert_close(loss, rtd_loss(model(ids, mask).logits, labels, mask > 0))


@pytest.mark.parametrize("masked", [False, True])
def test_toeplitz_views_equal_the_gathers_with_gradients(masked, monkeypatch):
    # below 129 tokens c2p/p2c are strided views of the score tables; they must equal the gathers
    import mdeberta.attention as attention

    model = DebertaForMaskedLM(
        TINY.replace(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    )
    ids, mask = batch(length=40)
    mask = mask if masked else None
    runs = []
    for toeplitz in (True, False):
        build = attention.relative_positions

        def forced(*args, _build=build, _t=toeplitz):
            return dataclasses.replace(_build(*args), toeplitz=_t)

        monkeypatch.setattr(attention, "relative_positions", forced)
        model.zero_grad()
        loss = model(ids, mask, labels=ids).loss
        loss.backward()
        runs.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
        monkeypatch.setattr(attention, "relative_positions", build)
    assert attention.relative_positions(40, 256, 256, 512, torch.device("cpu")).toeplitz
    torch.testing.assert_close(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        torch.testing.assert_close(a, b)
