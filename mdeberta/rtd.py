"""Replaced token detection (ELECTRA) with DeBERTa-v3's embedding sharing.

    generator G (DebertaForMaskedLM)   predicts the masked tokens            L_MLM (cross-entropy)
    discriminator D (DebertaForRTD)    tells replaced tokens from originals  L_RTD (BCE, non-pad)
    loss = L_MLM + λ · L_RTD

Both losses come back as sums with their counts (masked tokens, non-pad tokens): the trainer
divides by the counts of the whole step over all processes, so the gradient does not depend on
how the batch is split.

G's input has the selected positions masked; D's input has them replaced by tokens sampled from G's
softmax (temperature 1). A sample equal to the original counts as original. Sampling is detached:
no gradient flows from D into G through the tokens.

What D's word-embedding table E_D is, by `sharing`:

    gdes  E_D = stopgrad(E_G) + E_delta, E_delta zero-initialised (DeBERTa-v3): L_RTD trains only
          E_delta, L_MLM only E_G, so the two losses no longer pull E_G in opposite directions
    es    E_D = E_G: one table trained by both losses (ELECTRA)
    nes   E_D is D's own table, nothing shared

Only the word embeddings are shared: v3 models have no absolute position table in D's input, and
relative embeddings and LayerNorms stay per model, as in the official code. This module is model
code only: masking, loss weighting, optimizers and distribution live in train/.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from mdeberta.config import check
from mdeberta.model import DebertaForMaskedLM, DebertaForRTD

Sharing = Literal["gdes", "es", "nes"]
SHARING_MODES = ("gdes", "es", "nes")


class SharedEmbedding(nn.Module):
    """D's word embeddings tied to G's table: stopgrad(E_G) + E_delta (gdes) or E_G itself (es).

    It replaces D's nn.Embedding, so D's forward and state dict need no special path; E_delta is a
    parameter of D (key `deberta.embeddings.word_embeddings.E_delta`), so wrapping D alone in DDP
    keeps it synchronised. E_G is owned and saved by G.
    """

    def __init__(self, source: nn.Embedding, sharing: Sharing) -> None:
        super().__init__()
        check(sharing in ("gdes", "es"), f"SharedEmbedding needs gdes or es, got {sharing!r}")
        self.sharing = sharing
        self.padding_idx = source.padding_idx
        self._source = (source,)  # a tuple, so G's table is not registered (and saved) twice
        if sharing == "gdes":
            self.E_delta = nn.Parameter(torch.zeros_like(source.weight))

    @property
    def E_G(self) -> torch.Tensor:
        return self._source[0].weight

    @property
    def weight(self) -> torch.Tensor:
        """The effective table E_D (materialised; the forward only gathers the rows it needs)."""
        return self.E_G.detach() + self.E_delta if self.sharing == "gdes" else self.E_G

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.sharing == "es":
            return F.embedding(input_ids, self.E_G, self.padding_idx)
        # gather-then-add equals indexing (E_G.detach() + E_delta) without building the V x H sum
        E_G = F.embedding(input_ids, self.E_G.detach(), self.padding_idx)
        return E_G + F.embedding(input_ids, self.E_delta, self.padding_idx)


def sample_replacements(
    logits: torch.Tensor, noise: torch.Tensor, never_sample: torch.Tensor, original: torch.Tensor
) -> torch.Tensor:
    """One token per row of logits [N, V] from softmax(logits) (temperature 1), never an id where
    never_sample [V] is True (special tokens and the padding rows beyond the real vocabulary).

    noise [N] holds uniforms in [0, 1): inverse-CDF sampling makes the draw a pure function of the
    caller's keyed noise. The categorical distribution is the one torch.multinomial would use.
    """
    logits = logits.detach().float().masked_fill(never_sample, float("-inf"))
    cdf = logits.softmax(dim=-1).cumsum(dim=-1)
    threshold = noise.to(cdf.dtype).unsqueeze(1) * cdf[:, -1:]
    sampled = torch.searchsorted(cdf, threshold, right=True).squeeze(1)
    sampled = sampled.clamp_max(logits.shape[-1] - 1)
    # a rounding step in a parallel cumsum could land on a zero-probability id; keep the original
    return torch.where(never_sample[sampled], original, sampled)


def masked_positions(mask: torch.Tensor) -> torch.Tensor:
    """Flat indices [N] (into the B·L tokens, row-major) of the True entries of mask [B, L]."""
    return mask.flatten().nonzero().squeeze(1)


def generator_forward(
    generator: nn.Module,
    masked_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    input_ids: torch.Tensor,
    mask: torch.Tensor,
    positions: torch.Tensor,
    sample_noise: torch.Tensor,
    never_sample: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """G's MLM loss at the masked positions and its sampled replacements.

    `generator` is a DebertaForMaskedLM or a DDP wrapper of one. positions [C]: flat indices of the
    masked tokens; an entry where `mask` is False (padding up to a fixed size, so every step has
    the same shapes) adds nothing and is "replaced" by its own token. Returns mlm_sum (the summed
    cross-entropy: the trainer normalises it by the global count), mlm_correct (argmax hits) and
    sampled [C], one token per entry of positions.
    """
    logits = generator(masked_ids, attention_mask, positions=positions).logits.float()
    targets = input_ids.flatten().index_select(0, positions)
    real = mask.flatten().index_select(0, positions)
    labels = torch.where(real, targets, torch.full_like(targets, -100))
    mlm_sum = F.cross_entropy(logits, labels, ignore_index=-100, reduction="sum")
    with torch.no_grad():
        noise = sample_noise.flatten().index_select(0, positions)
        sampled = sample_replacements(logits, noise, never_sample, targets)
        sampled = torch.where(real, sampled, targets)
        correct = ((logits.argmax(dim=-1) == targets) & real).sum()
    return {"mlm_sum": mlm_sum, "mlm_correct": correct, "sampled": sampled}


def discriminator_inputs(
    input_ids: torch.Tensor, positions: torch.Tensor, sampled: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """D's input (originals with the samples at the flat `positions`) and its labels: 1 where the
    token differs from the original, so a sample equal to the original is labelled original."""
    disc_ids = input_ids.flatten().scatter(0, positions, sampled).view_as(input_ids)
    return disc_ids, (disc_ids != input_ids).long()


def rtd_loss(
    logits: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor | None = None
) -> torch.Tensor:
    """The RTD loss: BCE of D's logits [B, L] against labels (1 = replaced) summed over the tokens
    where keep is True (every non-pad token, [CLS] and [SEP] included, as officially; None: all).
    A sum, not a mean, so the trainer can normalise it by the global token count."""
    loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
    return loss.sum() if keep is None else torch.where(keep, loss, 0.0).sum()


def discriminator_forward(
    discriminator: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    positions: torch.Tensor,
    sampled: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """D's summed RTD loss on the replaced input and its statistics.

    Returns rtd_sum, rtd_correct, replaced (tokens labelled 1) and tokens (non-pad tokens).
    attention_mask None: no padding, every token counts.
    """
    disc_ids, labels = discriminator_inputs(input_ids, positions, sampled.detach())
    logits = discriminator(disc_ids, attention_mask).logits.float()
    keep = None if attention_mask is None else attention_mask > 0
    with torch.no_grad():
        hits, replaced = (logits > 0).long() == labels, labels > 0
        if keep is not None:
            hits, replaced = hits & keep, replaced & keep
    return {
        "rtd_sum": rtd_loss(logits, labels, keep),
        "rtd_correct": hits.sum(),
        "replaced": replaced.sum(),
        "tokens": keep.sum()
        if keep is not None
        else torch.full((), labels.numel(), device=labels.device),
    }


class RTDModel(nn.Module):
    """Generator + discriminator with embedding sharing; forward returns both losses' parts.

    special_ids: never sampled as replacements. vocab_size: the tokenizer's real size; the rows of
    the embedding tables beyond it (padding to a round size) are never sampled either.
    """

    def __init__(
        self,
        generator: DebertaForMaskedLM,
        discriminator: DebertaForRTD,
        *,
        sharing: Sharing = "gdes",
        special_ids: Iterable[int] = (),
        vocab_size: int | None = None,
    ) -> None:
        super().__init__()
        check(sharing in SHARING_MODES, f"sharing must be one of {SHARING_MODES}, got {sharing!r}")
        rows = generator.config.vocab_size
        check(
            discriminator.config.vocab_size == rows,
            f"generator and discriminator vocab sizes differ: {rows} vs "
            f"{discriminator.config.vocab_size}",
        )
        self.generator = generator
        self.discriminator = discriminator
        self.sharing = sharing
        if sharing != "nes":
            E_G = generator.deberta.embeddings.word_embeddings
            E_D = discriminator.deberta.embeddings.word_embeddings
            check(
                E_G.weight.shape == E_D.weight.shape,
                f"{sharing} shares one table: generator embeddings {tuple(E_G.weight.shape)} "
                f"and discriminator embeddings {tuple(E_D.weight.shape)} must match",
            )
            discriminator.deberta.embeddings.word_embeddings = SharedEmbedding(E_G, sharing)
        never_sample = torch.zeros(rows, dtype=torch.bool)
        never_sample[list(special_ids)] = True
        if vocab_size is not None:
            never_sample[vocab_size:] = True
        self.register_buffer("never_sample", never_sample, persistent=False)

    @property
    def E_G(self) -> torch.Tensor:
        return self.generator.deberta.embeddings.word_embeddings.weight

    @property
    def E_delta(self) -> torch.Tensor | None:
        return getattr(self.discriminator.deberta.embeddings.word_embeddings, "E_delta", None)

    def discriminator_embeddings(self) -> torch.Tensor:
        """E_D as the discriminator sees it (gdes: E_G + E_delta merged), detached."""
        return self.discriminator.deberta.embeddings.word_embeddings.weight.detach()

    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        masked_ids: torch.Tensor,
        mask: torch.Tensor,
        sample_noise: torch.Tensor,
        positions: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """G's half of the step (generator_forward), which decoupled training runs on its own."""
        return generator_forward(
            self.generator,
            masked_ids,
            attention_mask,
            input_ids,
            mask,
            positions,
            sample_noise,
            self.never_sample,
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        masked_ids: torch.Tensor,
        mask: torch.Tensor,
        sample_noise: torch.Tensor,
        positions: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Joint step: G on the masked input, sample, D on the replaced input (see module doc).

        positions: flat indices of the masked tokens (see generator_forward); None = those of mask.
        """
        if positions is None:
            positions = masked_positions(mask)
        g = self.generate(input_ids, attention_mask, masked_ids, mask, sample_noise, positions)
        d = discriminator_forward(
            self.discriminator, input_ids, attention_mask, positions, g.pop("sampled")
        )
        return {**g, **d, "masked": mask.sum()}
