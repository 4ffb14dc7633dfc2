"""Parallel-sentence retrieval: the XTREME Tatoeba protocol, with baselines beside the model.

    cfg = RetrievalConfig(model="models/base/discriminator", data="laser:tatoeba/", output="out/")
    results = run_retrieval(cfg)

Each sentence is encoded once; one hidden layer (0 = the embedding output, L = the last layer) is
mean-pooled over its non-padding tokens ([CLS] and [SEP] included unless pool_special is off),
L2-normalised, and every sentence of one side retrieves its nearest sentence (cosine) on the other
side. Top-1 accuracy is counted in both directions (xx->en, en->xx) and averaged. A query counts as
right only when its translation scores strictly higher than every other candidate, so ties (empty
or identical vectors) are never lucky.

Two baselines are scored in the same run: the same architecture at a seeded random initialisation
(what the network gives before any training: matching shared tokens such as numbers and names) and a
lexical one (TF-IDF weighted bags of the same tokenizer's ids, cosine). A pretrained encoder is
worth its compute where it beats both.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mdeberta import io
from mdeberta.config import config_to_dict
from mdeberta.eval.config import RetrievalConfig
from mdeberta.eval.finetune import deterministic, is_our_checkpoint, load_tokenizer, resolve_device
from mdeberta.eval.hub import check_model_source
from mdeberta.eval.parallel import ParallelSet, load_parallel
from mdeberta.eval.retrieval_report import FORMAT_VERSION, results_document, write_reports
from mdeberta.hf import load_pretrained
from mdeberta.manifest import MANIFEST, invalidate, read_manifest, write_manifest
from mdeberta.model import DebertaModel
from mdeberta.precision import autocast
from mdeberta.threads import apply_threads

log = logging.getLogger(__name__)


# the protocol


def default_layer(depth: int) -> int:
    """XTREME's layer scaled to depth: the 8th of 12 (round(2/3 of the depth)), at least 1."""
    return max(1, round(2 * depth / 3)) if depth else 0


def resolve_layer(layer: int | None, depth: int) -> int:
    """The hidden-state index (0 = embeddings .. depth) for a requested layer (negative: from
    the end, -1 = the last layer; None: default_layer)."""
    if layer is None:
        return default_layer(depth)
    index = layer + depth + 1 if layer < 0 else layer
    if not 0 <= index <= depth:
        raise ValueError(f"layer {layer} does not exist: the model has layers 0..{depth} (or -1..)")
    return index


def mean_pool(hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of hidden [B, T, H] over the positions where keep [B, T] is true (zero if none)."""
    keep = keep.to(hidden.dtype).unsqueeze(-1)
    return (hidden * keep).sum(1) / keep.sum(1).clamp_min(1.0)


def top1(queries: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    """Top-1 accuracy of cosine retrieval between aligned rows, both directions: (queries ->
    targets, targets -> queries). Row i is right when sim[i, i] beats every other candidate."""
    sim = F.normalize(queries.float(), dim=-1) @ F.normalize(targets.float(), dim=-1).T
    right = sim.diagonal()
    others = sim.clone()
    others.fill_diagonal_(float("-inf"))
    forward = (right > others.max(dim=1).values).float().mean().item()
    backward = (right > others.max(dim=0).values).float().mean().item()
    return forward, backward


def scores(queries: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """{"xx_to_en", "en_to_xx", "mean"} with queries = the translations, targets = English."""
    xx_en, en_xx = top1(queries, targets)
    return {"xx_to_en": xx_en, "en_to_xx": en_xx, "mean": (xx_en + en_xx) / 2}


def tfidf(token_ids: Sequence[Sequence[int]]) -> torch.Tensor:
    """TF-IDF vectors [N, distinct ids] of bags of ids (idf smoothed as log((1+N)/(1+df)) + 1)."""
    vocab = {t: i for i, t in enumerate(sorted({t for ids in token_ids for t in ids}))}
    counts = torch.zeros(len(token_ids), max(1, len(vocab)))
    for row, ids in enumerate(token_ids):
        for token, n in Counter(ids).items():
            counts[row, vocab[token]] = n
    df = (counts > 0).sum(0).float()
    idf = torch.log((1 + len(token_ids)) / (1 + df)) + 1
    return counts * idf


# encoders


class Encoder:
    """A tokenizer and an encoder returning every hidden state (ours through forward hooks, since
    our DebertaModel returns only the last layer; transformers' through output_hidden_states)."""

    def __init__(self, model, tokenizer, backend: str, device: torch.device, precision: str):
        self.model, self.tokenizer, self.backend = model.eval().to(device), tokenizer, backend
        self.device, self.precision = device, precision
        self.depth = model.config.num_hidden_layers
        self._states: list[torch.Tensor] = []
        if backend == "mdeberta":
            modules = [model.embeddings, *model.encoder.layer]
            for module in modules:
                module.register_forward_hook(lambda _m, _i, out: self._states.append(out))

    @torch.no_grad()
    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        ids, mask = ids.to(self.device), mask.to(self.device)
        with autocast(self.precision, self.device):
            if self.backend == "hf":
                return list(
                    self.model(
                        input_ids=ids, attention_mask=mask, output_hidden_states=True
                    ).hidden_states
                )
            self._states.clear()
            self.model(ids, mask)
            states, self._states = self._states, []
            return states


def load_encoder(cfg: RetrievalConfig, *, random_init: bool = False) -> Encoder:
    """The model of cfg (our export -> our DebertaModel, else transformers' AutoModel), or the same
    architecture freshly initialised with cfg.seed."""
    backend = cfg.backend
    if backend == "auto":
        backend = "mdeberta" if is_our_checkpoint(cfg.model) else "hf"
    tokenizer = load_tokenizer(cfg.tokenizer or cfg.model)
    if backend == "mdeberta":
        model = load_pretrained(cfg.model, head="base")
        if random_init:
            torch.manual_seed(cfg.seed)
            model = DebertaModel(model.config)
    else:
        # lazy: transformers' model classes take seconds to import; our exports never need them
        from transformers import AutoConfig, AutoModel

        if random_init:
            torch.manual_seed(cfg.seed)
            model = AutoModel.from_config(AutoConfig.from_pretrained(cfg.model))
        else:
            model = AutoModel.from_pretrained(cfg.model)
    return Encoder(model, tokenizer, backend, resolve_device(cfg.device), cfg.precision)


def tokenize(tokenizer, sentences: Sequence[str], max_length: int) -> list[list[int]]:
    return tokenizer(list(sentences), truncation=True, max_length=max_length)["input_ids"]


def length_batches(token_ids: Sequence[Sequence[int]], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), so padding stays small."""
    order = sorted(range(len(token_ids)), key=lambda i: (-len(token_ids[i]), i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad(token_ids: Sequence[Sequence[int]], rows: list[int], pad_id: int):
    width = max(len(token_ids[i]) for i in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, i in enumerate(rows):
        ids[r, : len(token_ids[i])] = torch.tensor(token_ids[i])
        mask[r, : len(token_ids[i])] = 1
    return ids, mask


def embed(
    encoder: Encoder,
    token_ids: Sequence[Sequence[int]],
    layers: Sequence[int],
    *,
    batch_size: int,
    pool_special: bool = True,
) -> dict[int, torch.Tensor]:
    """Mean-pooled float32 embeddings [N, H] of each requested hidden-state index."""
    special = torch.tensor(sorted(set(encoder.tokenizer.all_special_ids)))
    out = {layer: torch.zeros(len(token_ids), encoder.model.config.hidden_size) for layer in layers}
    pad_id = encoder.tokenizer.pad_token_id or 0
    for rows in length_batches(token_ids, batch_size):
        ids, mask = pad(token_ids, rows, pad_id)
        keep = mask.bool() if pool_special else mask.bool() & ~torch.isin(ids, special)
        states = encoder.hidden_states(ids, mask)
        index = torch.tensor(rows)
        for layer in layers:
            out[layer][index] = mean_pool(
                states[layer].float(), keep.to(states[layer].device)
            ).cpu()
    return out


# the run


def score_language(
    pairs: ParallelSet, encoders: dict[str, Encoder], layers: list[int], cfg: RetrievalConfig
) -> dict:
    """Per-layer scores of each encoder and the lexical baseline for one language."""
    tok = encoders["model"].tokenizer
    en, xx = (
        tokenize(tok, pairs.english, cfg.max_length),
        tokenize(tok, pairs.other, cfg.max_length),
    )
    result = {"pairs": len(pairs), "chance": 1 / len(pairs), **pairs.summary()}
    for name, encoder in encoders.items():
        vectors_en = embed(
            encoder, en, layers, batch_size=cfg.batch_size, pool_special=cfg.pool_special
        )
        vectors_xx = embed(
            encoder, xx, layers, batch_size=cfg.batch_size, pool_special=cfg.pool_special
        )
        result[name] = {layer: scores(vectors_xx[layer], vectors_en[layer]) for layer in layers}
    if cfg.baselines:
        special = set(tok.all_special_ids)
        bags = tfidf([[t for t in ids if t not in special] for ids in xx + en])
        result["lexical"] = scores(bags[: len(xx)], bags[len(xx) :])
    return result


def run_retrieval(cfg: RetrievalConfig) -> dict:
    """Score the model and both baselines on every language; write the reports and the manifest."""
    start = time.monotonic()
    check_model_source(cfg.model)
    _prepare_output(cfg.output)
    languages = (
        None if cfg.languages in ("", "all") else [x.strip() for x in cfg.languages.split(",")]
    )
    data = load_parallel(cfg.data, languages)
    with deterministic(cfg.seed):
        encoders = {"model": load_encoder(cfg)}
        apply_threads(cfg.threads, hidden_size=encoders["model"].model.config.hidden_size)
        if cfg.baselines:
            encoders["random_init"] = load_encoder(cfg, random_init=True)
        depth = encoders["model"].depth
        layer = resolve_layer(cfg.layer, depth)
        layers = list(range(depth + 1)) if cfg.all_layers else [layer]
        per_language = {}
        for lang, pairs in data.items():
            per_language[lang] = score_language(pairs, encoders, layers, cfg)
            line = per_language[lang]["model"][layer]["mean"]
            log.info(
                "%s: %.1f%% top-1 (mean of both directions, %d pairs)", lang, 100 * line, len(pairs)
            )
    results = results_document(cfg, encoders["model"], depth, layer, layers, per_language)
    results["seconds"] = round(time.monotonic() - start, 2)
    files = write_reports(cfg.output, results)
    inputs = {"model": cfg.model} if _has_manifest(cfg.model) else {}
    write_manifest(
        cfg.output,
        "retrieval-results",
        FORMAT_VERSION,
        options=config_to_dict(cfg),
        inputs=inputs,
        files=files,
        extra={"average": results["average"], "layer": layer},
    )
    return results


def _prepare_output(output: str) -> None:
    """Make the output dir; drop a previous run's manifest so a failed rerun looks incomplete."""
    io.makedirs(output)
    if io.exists(io.join(output, MANIFEST)):
        read_manifest(output, kind="retrieval-results")  # refuse to write into another artifact
    invalidate(output)


def _has_manifest(path: str) -> bool:
    try:
        return io.exists(io.join(path, MANIFEST))
    except (ValueError, ImportError):  # a hub id
        return False
