"""The RTD wrapper: gradient flow of each embedding-sharing mode, sampling, labels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mdeberta.model import DebertaConfig, DebertaForMaskedLM, DebertaForRTD
from mdeberta.rtd import (
    RTDModel,
    discriminator_inputs,
    masked_positions,
    rtd_loss,
    sample_replacements,
)

V, MASK = 40, 39
SPECIAL = [0, 1, 2, 3, MASK]


def tiny_rtd(sharing: str, vocab_size: int | None = None) -> RTDModel:
    torch.manual_seed(0)
    config = DebertaConfig.preset(
        "tiny",
        vocab_size=V,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        position_buckets=16,
        max_relative_positions=32,
    )
    gen = DebertaForMaskedLM(config.replace(num_hidden_layers=1))
    disc = DebertaForRTD(config)
    return RTDModel(gen, disc, sharing=sharing, special_ids=SPECIAL, vocab_size=vocab_size)


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, MASK, (3, 12), generator=g)
    ids[:, 0], ids[:, -1] = 1, 2
    ids[2, 9:] = 0  # padding
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[:, 3:6] = True
    masked = torch.where(mask, torch.full_like(ids, MASK), ids)
    return ids, (ids != 0).long(), masked, mask, torch.rand(ids.shape, generator=g)


def losses(model: RTDModel):
    out = model(*batch())
    return out["mlm_sum"], out["rtd_sum"]


def grad_of(t: torch.Tensor | None) -> float | None:
    return None if t is None or t.grad is None else float(t.grad.abs().sum())


def test_gdes_rtd_loss_reaches_only_E_delta():
    model = tiny_rtd("gdes")
    _, rtd = losses(model)
    rtd.backward()
    assert grad_of(model.E_G) is None  # stop-gradient: the discriminator cannot move E_G
    assert grad_of(model.E_delta) > 0
    assert any(p.grad is not None for p in model.discriminator.parameters())


def test_gdes_mlm_loss_reaches_only_E_G():
    model = tiny_rtd("gdes")
    mlm, _ = losses(model)
    mlm.backward()
    assert grad_of(model.E_G) > 0
    assert grad_of(model.E_delta) is None
    assert all(p.grad is None for p in model.discriminator.parameters())


def test_gdes_starts_with_E_D_equal_to_E_G_and_keeps_one_copy():
    model = tiny_rtd("gdes")
    assert torch.equal(model.E_delta, torch.zeros_like(model.E_G))
    assert torch.equal(model.discriminator_embeddings(), model.E_G.detach())
    keys = model.state_dict().keys()
    assert "discriminator.deberta.embeddings.word_embeddings.E_delta" in keys
    assert "discriminator.deberta.embeddings.word_embeddings.weight" not in keys
    with torch.no_grad():
        model.E_delta.add_(1.0)
    assert torch.allclose(model.discriminator_embeddings(), model.E_G.detach() + 1.0)


def test_es_one_table_trained_by_both_losses():
    model = tiny_rtd("es")
    assert model.E_delta is None
    assert model.discriminator_embeddings().data_ptr() == model.E_G.data_ptr()
    _, rtd = losses(model)
    rtd.backward()
    assert grad_of(model.E_G) > 0  # no stop-gradient: RTD pulls on the shared table
    model.zero_grad()
    mlm, _ = losses(model)
    mlm.backward()
    assert grad_of(model.E_G) > 0


def test_nes_separate_tables():
    model = tiny_rtd("nes")
    E_D = model.discriminator.deberta.embeddings.word_embeddings.weight
    assert E_D.data_ptr() != model.E_G.data_ptr()
    _, rtd = losses(model)
    rtd.backward()
    assert grad_of(model.E_G) is None and grad_of(E_D) > 0
    model.zero_grad(set_to_none=True)
    mlm, _ = losses(model)
    mlm.backward()
    assert grad_of(E_D) is None and grad_of(model.E_G) > 0


def test_sharing_needs_equal_widths():
    config = DebertaConfig.preset("tiny", vocab_size=V)
    gen = DebertaForMaskedLM(config.replace(hidden_size=16, num_attention_heads=2))
    with pytest.raises(ValueError, match="must match"):
        RTDModel(gen, DebertaForRTD(config), sharing="gdes")
    RTDModel(gen, DebertaForRTD(config), sharing="nes")  # separate tables may differ


def test_labels_when_generator_samples_the_original():
    ids, _, _, mask, _ = batch()
    originals = ids[mask]
    disc_ids, labels = discriminator_inputs(ids, masked_positions(mask), originals)
    assert torch.equal(disc_ids, ids) and labels.sum() == 0  # sampled == original -> "original"
    other = originals.clone()
    other[::2] = torch.where(originals[::2] == 5, 6, 5)
    disc_ids, labels = discriminator_inputs(ids, masked_positions(mask), other)
    assert labels[mask].tolist() == (other != originals).long().tolist()
    assert labels[~mask].sum() == 0


def test_sampling_puts_all_mass_on_a_sure_original():
    logits = torch.full((6, V), -30.0)
    targets = torch.tensor([4, 5, 6, 7, 8, 9])
    logits[torch.arange(6), targets] = 30.0
    never = torch.zeros(V, dtype=torch.bool)
    never[SPECIAL] = True
    sampled = sample_replacements(logits, torch.rand(6), never, targets)
    assert torch.equal(sampled, targets)


def test_sampling_never_picks_special_or_padding_rows():
    model = tiny_rtd("gdes", vocab_size=30)  # rows 30..39 are padding beyond the vocabulary
    never = model.never_sample
    assert never[SPECIAL].all() and never[30:].all() and not never[4:30].any()
    logits = torch.zeros(4000, V)
    logits[:, never] = 20.0  # the generator "prefers" forbidden ids: they must still never come out
    sampled = sample_replacements(logits, torch.rand(4000), never, torch.full((4000,), 5))
    assert not never[sampled].any()
    assert len(sampled.unique()) == 26  # every allowed id is reachable


def test_sampling_follows_the_softmax():
    torch.manual_seed(1)
    logits = torch.randn(1, V).repeat(20000, 1)
    never = torch.zeros(V, dtype=torch.bool)
    never[SPECIAL] = True
    sampled = sample_replacements(logits, torch.rand(20000), never, torch.zeros(20000).long())
    expected = logits[0].masked_fill(never, float("-inf")).softmax(-1)
    observed = torch.bincount(sampled, minlength=V).double() / 20000
    assert (observed - expected).abs().max() < 0.015


def test_forward_reports_consistent_counts():
    model = tiny_rtd("gdes")
    ids, attn, masked, mask, noise = batch()
    out = model(ids, attn, masked, mask, noise)
    assert out["tokens"] == attn.sum() and out["masked"] == mask.sum()
    assert 0 <= out["replaced"] <= out["masked"]
    assert torch.isfinite(out["mlm_sum"]) and out["rtd_sum"] > 0


def test_rtd_loss_is_the_official_bce_summed_over_non_pad_tokens():
    model = tiny_rtd("gdes").discriminator.eval()
    ids, attn, *_ = batch()
    labels = torch.randint(0, 2, ids.shape)
    with torch.no_grad():
        logits = model(ids, attn).logits
    keep = attn.bool()  # every non-pad token, [CLS]/[SEP] included
    expected = F.binary_cross_entropy_with_logits(logits[keep], labels[keep].float())
    torch.testing.assert_close(rtd_loss(logits, labels, keep) / keep.sum(), expected)
    full = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="sum")
    torch.testing.assert_close(rtd_loss(logits, labels), full)  # no mask: every token


def test_both_losses_are_sums_and_padded_positions_add_nothing():
    model = tiny_rtd("gdes")
    ids, attn, masked, mask, noise = batch()
    exact = model(ids, attn, masked, mask, noise)
    # positions padded to a fixed size with an unmasked token (as the collate does for compile)
    positions = torch.cat([masked_positions(mask), torch.zeros(5, dtype=torch.long)])
    padded = model(ids, attn, masked, mask, noise, positions=positions)
    for key in ("mlm_sum", "mlm_correct", "rtd_sum", "rtd_correct", "replaced", "tokens"):
        torch.testing.assert_close(padded[key], exact[key])
    gen = model.generator.eval()
    with torch.no_grad():  # mlm_sum is the mean cross-entropy times the count, not the mean
        labels = torch.where(mask, ids, -100)
        mean = gen(masked, attn, labels=labels).loss
    torch.testing.assert_close(exact["mlm_sum"].detach(), mean * mask.sum(), rtol=1e-5, atol=1e-5)
