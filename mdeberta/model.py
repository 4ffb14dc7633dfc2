"""The DeBERTa-v3 encoder (mDeBERTa-v3-base by default) and its heads.

Config, embeddings, the model, the heads. The encoder itself (relative positions, c2c + c2p + p2c
attention, the post-LN layer, the layer stack sharing the relative embeddings) is in
mdeberta/attention.py, which reads like the paper's equations. The heads:

  DebertaForMaskedLM                 the generator: dense -> act -> LayerNorm -> tied decoder + bias
  DebertaForRTD                      the discriminator: LayerNorm(h_CLS + h_t) -> dense -> act -> 1
  DebertaForSequenceClassification   pooler (dense + act on [CLS]) -> dropout -> classifier

Module names follow Hugging Face's DebertaV2 (`deberta.encoder.layer.0.attention.self.query_proj`,
`cls.predictions.transform.dense`, ...) so mdeberta/hf.py maps state dicts one to one. No training,
parallelism or I/O code lives here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mdeberta.attention import ACTIVATIONS, DebertaEncoder
from mdeberta.config import check


@dataclass
class DebertaConfig:
    """Shape of a DeBERTa-v2/v3 encoder; field names are Hugging Face's DebertaV2Config names."""

    vocab_size: int = 251000
    """Rows of the word-embedding table (mDeBERTa: 250,101 pieces + [MASK], padded to 251,000)."""
    hidden_size: int = 768
    """Width of every layer."""
    num_hidden_layers: int = 12
    """Number of transformer layers."""
    num_attention_heads: int = 12
    """Attention heads per layer; hidden_size must divide evenly."""
    intermediate_size: int = 3072
    """Inner width of the feed-forward block."""
    hidden_act: str = "gelu"
    """Feed-forward and MLM-head activation (gelu is the exact erf form)."""
    hidden_dropout_prob: float = 0.1
    """Dropout on embeddings, relative embeddings and every residual branch."""
    attention_probs_dropout_prob: float = 0.1
    """Dropout on attention probabilities."""
    max_position_embeddings: int = 512
    """Longest input the model is built for (and the size of the absolute table, if any)."""
    position_buckets: int = 256
    """k: relative distances fall into 2k log-spaced buckets; <= 0 means no bucketing."""
    max_relative_positions: int = 512
    """Distance at which the log buckets saturate; <= 0 means max_position_embeddings."""
    share_att_key: bool = True
    """Project relative embeddings with the content query/key layers (v3), not separate ones."""
    pos_att_type: tuple[str, ...] = ("p2c", "c2p")
    """Position terms added to content-to-content attention: any of c2p and p2c."""
    norm_rel_ebd: str = "layer_norm"
    """"layer_norm" to LayerNorm the relative embeddings (v3), "none" to use them raw."""
    position_biased_input: bool = False
    """Add absolute position embeddings to the input (DeBERTa-v1 style; v3 does not)."""
    type_vocab_size: int = 0
    """Token-type (segment) embeddings; 0 for none (v3)."""
    embedding_size: int | None = None
    """Word-embedding width if not hidden_size (adds embed_proj); None = hidden_size."""
    layer_norm_eps: float = 1e-7
    """Epsilon of every LayerNorm."""
    pad_token_id: int = 0
    """Id of [PAD]; its embedding gets no gradient."""
    initializer_range: float = 0.02
    """Standard deviation of the normal init of every Linear and Embedding weight."""
    pooler_dropout: float = 0.0
    """Dropout on the [CLS] vector before the classification pooler."""
    pooler_hidden_act: str = "gelu"
    """Activation of the classification pooler (gelu in DeBERTa, not BERT's tanh)."""
    cls_dropout: float | None = None
    """Dropout before the classifier; None means hidden_dropout_prob."""

    def __post_init__(self) -> None:
        self.pos_att_type = tuple(self.pos_att_type)
        positive = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"]
        positive += ["intermediate_size", "max_position_embeddings", "layer_norm_eps"]
        rules = [(getattr(self, n) > 0, n, "> 0") for n in positive + ["initializer_range"]]
        for n in ("hidden_dropout_prob", "attention_probs_dropout_prob", "pooler_dropout"):
            rules.append((0 <= getattr(self, n) < 1, n, "in [0, 1)"))
        for n in ("hidden_act", "pooler_hidden_act"):
            rules.append((getattr(self, n) in ACTIVATIONS, n, f"one of {list(ACTIVATIONS)}"))
        heads, buckets, cls_p = self.num_attention_heads, self.position_buckets, self.cls_dropout
        rules += [
            (self.hidden_size % heads == 0, "hidden_size", f"a multiple of {heads} heads"),
            (set(self.pos_att_type) <= {"c2p", "p2c"}, "pos_att_type", "a subset of (c2p, p2c)"),
            (self.norm_rel_ebd in ("layer_norm", "none"), "norm_rel_ebd", "layer_norm or none"),
            (buckets <= 0 or buckets >= 2, "position_buckets", ">= 2 (or <= 0: no buckets)"),
            (cls_p is None or 0 <= cls_p < 1, "cls_dropout", "None or in [0, 1)"),
            (
                self.embedding_size is None or self.embedding_size > 0,
                "embedding_size",
                "None or > 0",
            ),
            (self.type_vocab_size >= 0, "type_vocab_size", ">= 0"),
            (0 <= self.pad_token_id < self.vocab_size, "pad_token_id", "in [0, vocab_size)"),
        ]
        for ok, name, requirement in rules:
            check(ok, f"{name} must be {requirement}, got {getattr(self, name)!r}")

    @property
    def relative_span(self) -> int:
        """k: the relative table has 2k rows."""
        if self.position_buckets > 0:
            return self.position_buckets
        return self.bucket_max_position

    @property
    def bucket_max_position(self) -> int:
        if self.max_relative_positions > 0:
            return self.max_relative_positions
        return self.max_position_embeddings

    @classmethod
    def preset(cls, name: str, **overrides) -> DebertaConfig:
        """A named size: tiny (tests), xsmall, small, base (mDeBERTa-v3-base), large."""
        check(name in PRESETS, f"preset must be one of {sorted(PRESETS)}, got {name!r}")
        return cls(**{**PRESETS[name], **overrides})

    def replace(self, **changes) -> DebertaConfig:
        """A copy with some fields changed (e.g. the generator's num_hidden_layers)."""
        return dataclasses.replace(self, **changes)


# Official DeBERTa-v3 discriminator sizes (rtd_*.json) with mDeBERTa's vocabulary, and a tiny one.
_SIZES = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")
PRESETS: dict[str, dict] = {
    "tiny": dict(zip(_SIZES, (2, 32, 4, 64), strict=True), vocab_size=1000),
    "xsmall": dict(zip(_SIZES, (12, 384, 6, 1536), strict=True)),
    "small": dict(zip(_SIZES, (6, 768, 12, 3072), strict=True)),
    "base": dict(zip(_SIZES, (12, 768, 12, 3072), strict=True)),
    "large": dict(zip(_SIZES, (24, 1024, 16, 4096), strict=True)),
}


# outputs (attribute names as in transformers.modeling_outputs)


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor


@dataclass
class LogitsOutput:
    logits: torch.Tensor
    loss: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None


# embeddings


class DebertaEmbeddings(nn.Module):
    """Word (+ absolute position, type) embeddings -> LayerNorm -> zero the pads -> dropout."""

    def __init__(self, config: DebertaConfig) -> None:
        super().__init__()
        width = config.embedding_size or config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, width, config.pad_token_id)
        if config.position_biased_input:
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, width)
        if config.type_vocab_size > 0:
            self.token_type_embeddings = nn.Embedding(config.type_vocab_size, width)
        if width != config.hidden_size:
            self.embed_proj = nn.Linear(width, config.hidden_size, bias=False)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, inputs_embeds, mask, token_type_ids=None) -> torch.Tensor:
        x = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        if hasattr(self, "position_embeddings"):
            x = x + self.position_embeddings.weight[: x.shape[1]]
        if hasattr(self, "token_type_embeddings"):
            if token_type_ids is None:
                token_type_ids = torch.zeros(x.shape[:-1], dtype=torch.long, device=x.device)
            x = x + self.token_type_embeddings(token_type_ids)
        if hasattr(self, "embed_proj"):
            x = self.embed_proj(x)
        x = self.LayerNorm(x)
        if mask is not None:
            x = x * mask.unsqueeze(-1).to(x.dtype)
        return self.dropout(x)


# the model and its heads


class DebertaPreTrainedModel(nn.Module):
    """Shared init: N(0, initializer_range) weights, zero biases, unit LayerNorms, zero pad row."""

    config: DebertaConfig

    def init_weights(self) -> None:
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                nn.init.zeros_(module.weight[module.padding_idx])
            if isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


class DebertaModel(DebertaPreTrainedModel):
    """The bare encoder: input_ids or inputs_embeds -> last_hidden_state [B, L, D].

    attention_mask [B, L] is 1 at tokens and 0 at padding (None: no padding). GDES needs no
    inputs_embeds: mdeberta.rtd.SharedEmbedding stands in for D's word-embedding table."""

    def __init__(self, config: DebertaConfig, *, init: bool = True) -> None:
        super().__init__()
        self.config = config
        self.embeddings = DebertaEmbeddings(config)
        self.encoder = DebertaEncoder(config)
        if init:
            self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> EncoderOutput:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if attention_mask is not None and not torch.compiler.is_compiling():
            # no padding, no mask: skips a pass over every [B, H, L, L] score tensor. (One host
            # sync, like HF's check; under compile the mask stays, to keep one graph.)
            attention_mask = None if bool(attention_mask.all()) else attention_mask
        x = self.embeddings(input_ids, inputs_embeds, attention_mask, token_type_ids)
        return EncoderOutput(self.encoder(x, attention_mask))


class MLMTransform(nn.Module):
    """dense -> act -> LayerNorm before the tied decoder (HF: cls.predictions.transform)."""

    def __init__(self, config: DebertaConfig) -> None:
        super().__init__()
        width = config.embedding_size or config.hidden_size
        self.dense = nn.Linear(config.hidden_size, width)
        self.act = ACTIVATIONS[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(width, config.layer_norm_eps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(h)))


class MLMPredictions(nn.Module):
    """Logits = transform(h) @ word_embeddings^T + bias (HF: cls.predictions; the decoder weight is
    the word-embedding table itself, so it has no parameter of its own)."""

    def __init__(self, config: DebertaConfig) -> None:
        super().__init__()
        self.transform = MLMTransform(config)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, h: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(h), word_embeddings, self.bias)


class MLMHead(nn.Module):
    def __init__(self, config: DebertaConfig) -> None:
        super().__init__()
        self.predictions = MLMPredictions(config)


class DebertaForMaskedLM(DebertaPreTrainedModel):
    """The generator. labels [B, L] hold the original id at masked positions and -100 elsewhere.

    positions [N] (flat indices into the B·L tokens): logits only there, [N, V] in that order, so a
    [B, L, 251000] tensor is never built (labels, if given, are read at the same positions)."""

    def __init__(self, config: DebertaConfig) -> None:
        super().__init__()
        self.config = config
        self.deberta = DebertaModel(config, init=False)
        self.cls = MLMHead(config)
        self.init_weights()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        inputs_embeds=None,
        labels=None,
        token_type_ids=None,
        positions: torch.Tensor | None = None,
    ) -> LogitsOutput:
        h = self.deberta(input_ids, attention_mask, inputs_embeds, token_type_ids).last_hidden_state
        if positions is not None:
            h = h.flatten(0, 1).index_select(0, positions)
            labels = None if labels is None else labels.flatten().index_select(0, positions)
        logits = self.cls.predictions(h, self.deberta.embeddings.word_embeddings.weight)
        loss = None
        if labels is not None:  # fp32 loss: bf16 log-softmax over 251k classes is too coarse
            loss = F.cross_entropy(
                logits.flatten(0, -2).float(), labels.flatten(), ignore_index=-100
            )
        return LogitsOutput(logits, loss)


class RTDHead(nn.Module):
    """Official LMMaskPredictionHead: LayerNorm(h_CLS + h_t) -> dense -> act -> classifier (one
    logit per token). The official key `classifer` is read as `classifier` by mdeberta.hf."""

    def __init__(self, config: DebertaConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACTIVATIONS[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.classifier = nn.Linear(config.hidden_size, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = self.LayerNorm(h[:, :1] + h)  # the [CLS] state is broadcast onto every token
        return self.classifier(self.act(self.dense(x))).squeeze(-1)


class DebertaForRTD(DebertaPreTrainedModel):
    """The discriminator: logits [B, L] > 0 means "replaced". Its loss is mdeberta.rtd.rtd_loss."""

    def __init__(self, config: DebertaConfig) -> None:
        super().__init__()
        self.config = config
        self.deberta = DebertaModel(config, init=False)
        self.mask_predictions = RTDHead(config)
        self.init_weights()

    def forward(
        self, input_ids=None, attention_mask=None, inputs_embeds=None, token_type_ids=None
    ) -> LogitsOutput:
        h = self.deberta(input_ids, attention_mask, inputs_embeds, token_type_ids).last_hidden_state
        return LogitsOutput(self.mask_predictions(h), None, h)


class ContextPooler(nn.Module):
    """[CLS] -> dropout -> dense -> act (HF: pooler; DeBERTa uses gelu where BERT uses tanh)."""

    def __init__(self, config: DebertaConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.pooler_dropout)
        self.act = ACTIVATIONS[config.pooler_hidden_act]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(self.dropout(h[:, 0])))


class DebertaForSequenceClassification(DebertaPreTrainedModel):
    """Pooler -> dropout -> classifier, as HF's. labels [B]: class ids (negative ones are ignored),
    or float targets with num_labels=1 (regression, MSE). label_names are saved as id2label."""

    def __init__(
        self, config: DebertaConfig, num_labels: int = 2, label_names: list[str] | None = None
    ) -> None:
        super().__init__()
        check(num_labels >= 1, f"num_labels must be >= 1, got {num_labels}")
        check(
            label_names is None or len(label_names) == num_labels,
            f"label_names must have num_labels={num_labels} entries, got {label_names}",
        )
        self.config, self.num_labels = config, num_labels
        self.label_names = (
            list(label_names) if label_names else [f"LABEL_{i}" for i in range(num_labels)]
        )
        self.deberta = DebertaModel(config, init=False)
        self.pooler = ContextPooler(config)
        p = config.hidden_dropout_prob if config.cls_dropout is None else config.cls_dropout
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        self.init_weights()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        inputs_embeds=None,
        labels=None,
        token_type_ids=None,
    ) -> LogitsOutput:
        h = self.deberta(input_ids, attention_mask, inputs_embeds, token_type_ids).last_hidden_state
        logits = self.classifier(self.dropout(self.pooler(h)))
        loss = None
        if labels is not None and self.num_labels == 1:
            loss = F.mse_loss(logits.squeeze(-1).float(), labels.float())
        elif labels is not None:
            labels = labels.long().masked_fill(labels < 0, -100)
            loss = F.cross_entropy(logits.float(), labels, ignore_index=-100)
        return LogitsOutput(logits, loss)
