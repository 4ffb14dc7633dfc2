"""DeBERTa's disentangled self-attention and the encoder built from it.

Relative positions, then c2c + c2p + p2c, then the post-LN layer, then the encoder:

    A[i, j] = q_i·k_j  +  q_i·Kr[δ(i, j)]  +  k_j·Qr[δ(j, i)]      (all divided by sqrt(3·d_head))
               c2c          c2p                  p2c

where δ(i, j) is the bucketed relative distance i - j shifted into [0, 2k) (k = position_buckets)
and Kr, Qr are the relative embeddings projected by the same key/query layers (share_att_key).

Speed, compared with Hugging Face's eager code (same numbers, checked by the parity tests):
  * Kr and Qr are projected once per layer and broadcast over the batch (HF `.repeat`s them B
    times), and only for the R relative rows a length-L input can reach (R <= 2L+1, not 2k).
  * c2p and p2c are gathered from the [B, H, L, R] score tables with an [L, L] index built once per
    forward; nothing of size L x L x d exists. Up to L = k/2 + 1 (129 tokens for mDeBERTa) no
    bucket is reached and the gathers become strided views (`skew`): no index, no scatter-add.
  * c2p + p2c + the padding mask are one additive bias: torch's scaled_dot_product_attention in
    inference and on CUDA, on CPU in training the bias goes into the score GEMM (`attend`). An
    all-ones attention_mask is dropped, so unpadded batches skip the mask entirely.
  * q is scaled before any product (as the official code does), which keeps fp16/bf16 scores small.
Module and parameter names follow HF's DebertaV2 so state dicts map one to one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
}


# relative positions


def log_bucket_position(rel: torch.Tensor, bucket_size: int, max_position: int) -> torch.Tensor:
    """Map relative distances to log-spaced buckets: |rel| <= bucket_size/2 is kept as is, larger
    distances are compressed logarithmically up to max_position. Float32 arithmetic in the same
    order as HF's make_log_bucket_position, so the |rel| = 511 ceil edge rounds identically."""
    mid = bucket_size // 2
    sign = torch.sign(rel)
    near = (rel < mid) & (rel > -mid)
    # near distances get a dummy magnitude so log() stays finite; where() discards them below
    magnitude = torch.where(near, torch.full_like(rel, mid - 1), rel.abs())
    log_ratio = torch.log(magnitude / mid) / torch.log(torch.tensor((max_position - 1) / mid))
    log_pos = torch.ceil(log_ratio * (mid - 1)) + mid
    return torch.where(magnitude <= mid, rel.to(log_pos.dtype), log_pos * sign).long()


def _bucket_reach(distance: int, bucket_size: int, max_position: int) -> int:
    """Largest |bucket| of any |rel| <= distance, plus one row of slack for float rounding."""
    mid = bucket_size // 2
    if bucket_size <= 0 or distance <= mid:
        return distance + 1
    ratio = math.log(distance / mid) / math.log((max_position - 1) / mid)
    return math.ceil(ratio * (mid - 1)) + mid + 1


@dataclass
class RelativePositions:
    """What every layer needs to look relative positions up, built once per forward."""

    c2p_index: torch.Tensor
    """[L, L] long: relative-table row for query i, key j: δ(i, j) - start."""
    p2c_index: torch.Tensor
    """[L, L] long: the same for p2c, indexed [key j, query i] as in HF's transposed formulation."""
    start: int
    """First row of rel_embeddings that is used; rows start:stop are projected."""
    stop: int
    """One past the last used row."""
    toeplitz: bool
    """Whether δ(i, j) = i - j + const for every pair (no bucket or clamp in reach, e.g. L <= 129
    for mDeBERTa): c2p and p2c are then strided views of the score tables, no gather needed."""


def relative_positions(
    length: int, att_span: int, bucket_size: int, max_position: int, device: torch.device
) -> RelativePositions:
    """Index tables for c2p and p2c at sequence length `length`.

    att_span is k, the half-width of the relative table (2k rows). bucket_size <= 0 means no
    bucketing: distances are only clamped to [-k, k)."""
    pos = torch.arange(length, device=device)
    rel = pos[:, None] - pos[None, :]  # query index minus key index
    if bucket_size > 0:
        rel = log_bucket_position(rel, bucket_size, max_position)
    last = 2 * att_span - 1
    c2p = torch.clamp(rel + att_span, 0, last)
    p2c = torch.clamp(-rel + att_span, 0, last)
    # only rows a distance of at most length-1 can reach are projected (Python ints, so compile
    # sees static slices); the slack row in _bucket_reach covers float rounding at the ceil edge
    reach = _bucket_reach(length - 1, bucket_size, max_position)
    start, stop = max(att_span - reach, 0), min(att_span + reach + 1, 2 * att_span)
    toeplitz = (bucket_size <= 0 or length - 1 <= bucket_size // 2) and reach < att_span
    return RelativePositions(c2p - start, p2c - start, start, stop, toeplitz)


def skew(scores: torch.Tensor) -> torch.Tensor:
    """[..., L, R] -> the [..., L, L] view out[i, j] = scores[i, (R-1)/2 - i + j], without a copy.

    Reading the flattened table with a row stride of R-1 instead of R moves each row one element
    left, which turns a relative (Toeplitz) index into plain slicing (Transformer-XL's shift)."""
    *batch, length, rows = scores.shape
    flat = scores.reshape(*batch, length * rows)
    start = (rows - 1) // 2  # rows = 2 * reach + 1 with reach >= length, so this stays in bounds
    band = flat[..., start : start + length * (rows - 1)]
    return band.unflatten(-1, (length, rows - 1))[..., :length]


# attention


class DisentangledSelfAttention(nn.Module):
    """Multi-head attention scored by content and relative position (HF: attention.self)."""

    def __init__(self, config) -> None:
        super().__init__()
        hidden, heads = config.hidden_size, config.num_attention_heads
        self.num_heads, self.head_size = heads, hidden // heads
        self.query_proj = nn.Linear(hidden, hidden)
        self.key_proj = nn.Linear(hidden, hidden)
        self.value_proj = nn.Linear(hidden, hidden)
        self.c2p = "c2p" in config.pos_att_type
        self.p2c = "p2c" in config.pos_att_type
        if not config.share_att_key:  # DeBERTa-v2 style separate position projections
            if self.c2p:
                self.pos_key_proj = nn.Linear(hidden, hidden)
            if self.p2c:
                self.pos_query_proj = nn.Linear(hidden, hidden)
        self.share_att_key = config.share_att_key
        # every score term is divided by sqrt(d_head * number of terms), c2c included
        self.scale = (self.head_size * (1 + self.c2p + self.p2c)) ** -0.5
        self.pos_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.dropout_p = config.attention_probs_dropout_prob

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        """[..., L, H*d] -> [..., H, L, d]."""
        return x.unflatten(-1, (self.num_heads, self.head_size)).transpose(-2, -3)

    def forward(
        self,
        hidden: torch.Tensor,
        key_mask: torch.Tensor,
        rel_embeddings: torch.Tensor,
        positions: RelativePositions,
    ) -> torch.Tensor:
        """hidden [B, L, D]; key_mask [B, 1, 1, L] bool, False at padding, or None -> [B, L, D]."""
        q = self.heads(self.query_proj(hidden)) * self.scale
        k = self.heads(self.key_proj(hidden))
        v = self.heads(self.value_proj(hidden))
        bias = self.position_bias(q, k, self.pos_dropout(rel_embeddings), positions)
        if key_mask is not None:
            if bias is None:
                bias = q.new_zeros(key_mask.shape)
            # padded keys get the dtype's most negative value: exp() -> 0, and unlike -inf an
            # all-pad row stays finite. Only keys are masked: pad query rows differ from HF's.
            bias = bias.masked_fill(~key_mask, torch.finfo(bias.dtype).min)
        dropout_p = self.dropout_p if self.training else 0.0
        if bias is not None and bias.requires_grad and q.device.type == "cpu":
            context = self.attend(q, k, v, bias, dropout_p)
        else:  # q is already scaled
            context = F.scaled_dot_product_attention(q, k, v, bias, dropout_p, scale=1.0)
        return context.transpose(1, 2).flatten(2)

    @staticmethod
    def attend(q, k, v, bias, dropout_p: float) -> torch.Tensor:
        """softmax(q·k + bias)·v for a bias that needs a gradient, on CPU. SDPA has no fused CPU
        kernel for that and falls back to a path with masked-row checks (two more L x L passes);
        here the bias is added by the score GEMM itself (beta=1). CUDA's memory-efficient SDPA
        kernel does take a bias gradient, so there SDPA is used."""
        B, H, L, d = q.shape
        scores = torch.baddbmm(
            bias.reshape(B * H, L, L),
            q.reshape(B * H, L, d),
            k.reshape(B * H, L, d).transpose(1, 2),
        )
        probs = F.dropout(scores.softmax(-1), dropout_p)
        return torch.bmm(probs, v.reshape(B * H, L, d)).view(B, H, L, d)

    def position_bias(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        rel: torch.Tensor,
        positions: RelativePositions,
    ) -> torch.Tensor | None:
        """c2p + p2c as one [B, H, L, L] tensor (already scaled, since q is), or None."""
        bias = None
        batch, heads, length, _ = q.shape
        shape = (batch, heads, length, length)
        if self.c2p:
            key_rel = self.heads(
                self.key_proj(rel) if self.share_att_key else self.pos_key_proj(rel)
            )
            if positions.toeplitz:  # c2p[i, j] = C[i, i - j + c]: reversed rows make it a skew
                bias = skew(torch.matmul(q, key_rel.flip(-2).transpose(-1, -2)))
            else:  # [B, H, L, R] scores (Kr broadcast over the batch), gathered to [B, H, L, L]
                scores = torch.matmul(q, key_rel.transpose(-1, -2))
                bias = torch.gather(scores, -1, positions.c2p_index.expand(shape))
        if self.p2c:
            query_rel = self.query_proj(rel) if self.share_att_key else self.pos_query_proj(rel)
            query_rel = self.heads(query_rel) * self.scale
            scores = torch.matmul(k, query_rel.transpose(-1, -2))  # [B, H, L(key), R]
            if positions.toeplitz:  # p2c[i, j] = P[j, i - j + c]
                p2c = skew(scores).transpose(-1, -2)
            else:
                p2c = torch.gather(scores, -1, positions.p2c_index.expand(shape)).transpose(-1, -2)
            bias = p2c if bias is None else bias + p2c
        return bias


# the transformer layer


class ResidualLayerNorm(nn.Module):
    """LayerNorm(x + dropout(dense(h))): the post-LN residual of both sublayers (HF: *.output)."""

    def __init__(self, d_in: int, config) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(x + self.dropout(self.dense(h)))


class DebertaAttention(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.self = DisentangledSelfAttention(config)
        self.output = ResidualLayerNorm(config.hidden_size, config)

    def forward(self, x, key_mask, rel_embeddings, positions) -> torch.Tensor:
        return self.output(self.self(x, key_mask, rel_embeddings, positions), x)


class Intermediate(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class DebertaLayer(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.attention = DebertaAttention(config)
        self.intermediate = Intermediate(config)
        self.output = ResidualLayerNorm(config.intermediate_size, config)

    def forward(self, x, key_mask, rel_embeddings, positions) -> torch.Tensor:
        x = self.attention(x, key_mask, rel_embeddings, positions)
        return self.output(self.intermediate(x), x)


class DebertaEncoder(nn.Module):
    """The layers plus the relative-position table they share (LayerNorm'd once per forward)."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.layer = nn.ModuleList(DebertaLayer(config) for _ in range(config.num_hidden_layers))
        self.rel_embeddings = nn.Embedding(2 * config.relative_span, config.hidden_size)
        if config.norm_rel_ebd == "layer_norm":
            self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        c = self.config
        positions = relative_positions(
            x.shape[1], c.relative_span, c.position_buckets, c.bucket_max_position, x.device
        )
        rel = self.rel_embeddings.weight[positions.start : positions.stop]
        if hasattr(self, "LayerNorm"):
            rel = self.LayerNorm(rel)  # row-wise, so slicing first gives the same rows
        key_mask = None if mask is None else mask[:, None, None, :].bool()
        for layer in self.layer:
            x = layer(x, key_mask, rel, positions)
        return x
