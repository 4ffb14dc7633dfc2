"""How alike a model's word embeddings have become, by how often training saw each token.

    python benchmarks/collapse.py --model run/export/step-1500/discriminator --data shards/

A measure for the learning study (benchmarks/learning.py): the mean pairwise cosine similarity,
over groups of token ids, of the rows the first layer sees (the model's embedding LayerNorm
applied to its word-embedding rows). At a random initialisation it is near 0 for every group.
The groups, by the token counts of the training shards:

    rare      the 2,000 least frequent ids that training saw at least once
    frequent  the 2,000 most frequent ids
    unseen    every id of the vocabulary that training never saw (special ids left out)

and the effective number of dimensions the frequent rows spread over (participation ratio).

A value near 1 for `rare` means those tokens have become one vector: a sentence made of them
looks like any other to a mean-pooled encoder. Unseen rows move only through the tied output
layer's softmax, which pushes every non-target row the same way, and Adam turns those tiny
gradients into full-size steps (a small epsilon divides by almost nothing).
"""

from __future__ import annotations

import argparse
import json
from itertools import islice
from pathlib import Path

import numpy as np
import torch

GROUP = 2000


def token_counts(shards: str) -> tuple[np.ndarray, int, list[int]]:
    """(count per id over every training sequence, the tokenizer's vocab size, special ids)."""
    from mdeberta.shard_reader import ShardDataset

    data = ShardDataset(shards, batch_size=256)
    counts = np.zeros(data.vocab_size, dtype=np.int64)
    for row in islice(data.stream(), data.num_sequences):  # one epoch: every sequence once
        counts += np.bincount(row.numpy(), minlength=data.vocab_size)[: data.vocab_size]
    return counts, data.vocab_size, sorted(set(data.special_ids.values()))


def groups(counts: np.ndarray, special: list[int], size: int = GROUP) -> dict[str, np.ndarray]:
    """Token ids of the rare, frequent and unseen groups (module doc); ties broken by id."""
    ids = np.setdiff1d(np.arange(len(counts)), special)
    seen = ids[counts[ids] > 0]
    by_count = seen[np.argsort(counts[seen], kind="stable")]
    chosen = {
        "rare": by_count[:size],
        "frequent": by_count[::-1][:size],
        "unseen": ids[counts[ids] == 0],
    }
    # contiguous copies: torch cannot index with a reversed (negative-stride) numpy view
    return {name: np.ascontiguousarray(group) for name, group in chosen.items()}


def mean_pairwise_cosine(rows: torch.Tensor) -> float:
    """Mean cosine similarity over the n(n-1) ordered pairs of distinct rows [n, H]."""
    n = rows.shape[0]
    if n < 2:
        return float("nan")
    unit = torch.nn.functional.normalize(rows.double(), dim=1)
    total = unit.sum(0)
    return float((total @ total - n) / (n * (n - 1)))  # the sum of all pairs less the diagonal


def effective_dimensions(rows: torch.Tensor) -> float:
    """Participation ratio of the centred rows' variance, (sum s)^2 / sum s^2 over the squared
    singular values s: the number of directions the rows really spread over (H when isotropic,
    1 when one direction holds all the variance)."""
    variance = torch.linalg.svdvals(rows.double() - rows.double().mean(0)) ** 2
    return float(variance.sum() ** 2 / (variance**2).sum())


def collapse(
    model_dir: str, ids: dict[str, np.ndarray], random_init: bool = False
) -> dict[str, float]:
    """Mean pairwise cosine per group of LayerNorm(word embeddings) of a Hugging Face model, and
    the effective dimensions of the frequent group (`frequent_dims`): a sentence's mean-pooled
    first layer is mostly made of those rows. random_init: the same architecture, seed 0."""
    from transformers import AutoConfig, AutoModel

    if random_init:
        torch.manual_seed(0)
        model = AutoModel.from_config(AutoConfig.from_pretrained(model_dir)).eval()
    else:
        model = AutoModel.from_pretrained(model_dir).eval()
    embeddings = model.embeddings
    with torch.no_grad():
        table = embeddings.word_embeddings.weight
        result = {}
        for name, group in ids.items():
            rows = embeddings.LayerNorm(table[torch.as_tensor(group)])
            result[name] = round(mean_pairwise_cosine(rows), 4)
            if name == "frequent":
                result["frequent_dims"] = round(effective_dimensions(rows), 1)
    return result


def cached_groups(shards: str, cache: Path) -> dict[str, np.ndarray]:
    """groups() of the shards' token counts, the counts kept in `cache` (.npz) for reruns."""
    if not cache.exists():
        counts, _, special = token_counts(shards)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(tmp, counts=counts, special=np.asarray(special, dtype=np.int64))
        tmp.rename(cache)
    saved = np.load(cache)
    return groups(saved["counts"], saved["special"].tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="HF model dir (repeat)")
    parser.add_argument("--data", required=True, help="the token shards the model trained on")
    args = parser.parse_args()
    counts, _, special = token_counts(args.data)
    ids = groups(counts, special)
    sizes = {name: len(group) for name, group in ids.items()}
    print(json.dumps({"groups": sizes, "models": {m: collapse(m, ids) for m in args.model}}))


if __name__ == "__main__":
    main()
