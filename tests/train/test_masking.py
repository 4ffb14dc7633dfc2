"""Masking: how many and which tokens, the replacement policies, keyed randomness, the collate."""

from __future__ import annotations

import torch

from mdeberta.train.masking import MaskingCollate, expected_masks, mask_tokens

MASK, VOCAB = 99, 100
SPECIAL = [0, 1, 2, 3, MASK]


def rows(n: int = 64, length: int = 40, seed: int = 0) -> torch.Tensor:
    ids = torch.randint(4, MASK, (n, length), generator=torch.Generator().manual_seed(seed))
    ids[:, 0], ids[:, 20], ids[:, -1] = 1, 3, 2  # [CLS], an [UNK], [SEP]
    ids[-1, 30:] = 0  # a padded row
    return ids


def masked(ids, step=0, policy="mask", seed=0, mask_prob=0.15):
    return mask_tokens(
        ids,
        seed=seed,
        step=step,
        mask_id=MASK,
        pad_id=0,
        special_ids=SPECIAL,
        vocab_size=VOCAB,
        mask_prob=mask_prob,
        policy=policy,
    )


def test_fifteen_percent_of_non_special_tokens_never_specials():
    ids = rows()
    b = masked(ids)
    candidates = ~torch.isin(ids, torch.tensor(SPECIAL))
    assert not (b.mask & ~candidates).any()  # never [CLS] [SEP] [UNK] [PAD] [MASK]
    for row in range(ids.shape[0]):
        assert b.mask[row].sum() == expected_masks(int(candidates[row].sum()), 0.15)
    assert expected_masks(37, 0.15) == 6 and expected_masks(3, 0.15) == 1
    assert torch.equal(b.attention_mask, (ids != 0).long())


def test_official_policy_masks_every_selected_token():
    ids = rows()
    b = masked(ids)
    assert (b.masked_ids[b.mask] == MASK).all()
    assert torch.equal(b.masked_ids[~b.mask], ids[~b.mask])
    assert torch.equal(b.input_ids, ids)


def test_80_10_10_policy_proportions():
    ids = rows(n=2000, length=64)
    b = masked(ids, policy="80-10-10")
    sel_orig, sel_new = ids[b.mask], b.masked_ids[b.mask]
    n = len(sel_new)
    as_mask = (sel_new == MASK).float().mean()
    kept = (sel_new == sel_orig).float().mean()
    random = ((sel_new != MASK) & (sel_new != sel_orig)).float().mean()
    assert (
        abs(as_mask - 0.8) < 0.02 and abs(kept - 0.1 - 0.1 / 95) < 0.02 and abs(random - 0.1) < 0.02
    )
    assert not torch.isin(sel_new[sel_new != MASK], torch.tensor(SPECIAL)).any()
    assert n > 10000


def test_keyed_by_content_not_by_batch_position():
    ids = rows()
    whole = masked(ids, step=3)
    halves = [masked(ids[:32], step=3), masked(ids[32:].flip(0), step=3)]
    assert torch.equal(whole.mask[:32], halves[0].mask)
    assert torch.equal(whole.mask[32:].flip(0), halves[1].mask)
    assert torch.equal(whole.sample_noise[:32], halves[0].sample_noise)


def test_new_masks_every_step_and_seed():
    ids = rows()
    assert torch.equal(masked(ids, step=5).mask, masked(ids, step=5).mask)
    assert not torch.equal(masked(ids, step=5).mask, masked(ids, step=6).mask)
    assert not torch.equal(masked(ids, seed=1).mask, masked(ids, seed=2).mask)


def test_selection_is_uniform_over_positions():
    ids = torch.full((4000, 20), 10)
    ids[:, 0], ids[:, -1] = 1, 2
    ids[:, 1:4] = (
        torch.arange(4000)[:, None] // torch.tensor([1, 80, 6400]) % 80 + 4
    )  # distinct rows
    b = masked(ids, mask_prob=0.25)
    per_position = b.mask[:, 1:-1].float().mean(0)  # 18 candidates, round(4.5) -> 5 each row
    assert (per_position - 5 / 18).abs().max() < 0.03


def test_positions_are_padded_to_a_fixed_size_with_an_unselected_token():
    ids = rows()  # 64 x 40, the last row half padding
    b = masked(ids)
    capacity = 64 * expected_masks(40, 0.15)
    selected = b.mask.flatten().nonzero().squeeze(1)
    assert b.positions.shape == (capacity,) and len(selected) < capacity
    assert torch.equal(b.positions[: len(selected)], selected)  # row-major, as boolean indexing
    assert not b.mask.flatten()[b.positions[len(selected) :]].any()
    assert b.counts.tolist() == [len(selected), int((ids != 0).sum())]
    for row in range(3):  # any batch of this shape has these shapes
        again = masked(rows(seed=row + 1), step=row)
        assert again.positions.shape == b.positions.shape


def test_unpadded_batches_carry_no_attention_mask():
    ids = rows()[:-1]  # without the padded row
    b = masked(ids)
    assert b.attention_mask is None and b.counts[1] == ids.numel()
    assert masked(rows()).attention_mask is not None


def test_collate_keys_each_micro_batch_by_the_step_that_trains_on_it():
    collate = MaskingCollate(
        first_step=5,
        accumulation=3,
        seed=0,
        mask_id=MASK,
        pad_id=0,
        special_ids=SPECIAL,
        vocab_size=VOCAB,
    )
    ids = rows(n=8)
    batches = [collate(list(ids)) for _ in range(7)]
    assert [b.step for b in batches] == [5, 5, 5, 6, 6, 6, 7]
    assert torch.equal(batches[4].mask, masked(ids, step=6).mask)
