"""Is there cross-lingual signal under each language's mean? Retrieval plain, centred, standardised.

    python benchmarks/centering.py --model run/export/step-1500/discriminator --data laser:parallel/

A diagnostic for the learning study (benchmarks/learning.py), not the evaluation protocol (that
stays XTREME's, `mdeberta eval retrieval`). A trained encoder's sentence vectors share a large
common direction per language (anisotropy): cosine then ranks candidates by that offset more than
by meaning, and a model can hold translation signal that plain cosine does not show. Subtracting
each language's mean sentence vector before the cosine (Libovicky et al. 2020, "On the Language
Neutrality of Pre-trained Multilingual Representations") removes the offset; dividing each
dimension by its standard deviation as well keeps a few high-variance dimensions from deciding the
cosine (Timkey and van Schijndel 2021, "All Bark and No Bite"). Scored per layer for
the model and its random initialisation, so "training added signal" stays measured against the
same untrained network under the same treatment.
"""

from __future__ import annotations

import argparse
import json

import torch

from mdeberta.eval.config import RetrievalConfig
from mdeberta.eval.parallel import load_parallel
from mdeberta.eval.retrieval import embed, load_encoder, scores, tokenize
from mdeberta.threads import apply_threads


def centred(vectors: torch.Tensor) -> torch.Tensor:
    """Rows less their mean: one language's sentence vectors without their common offset."""
    return vectors - vectors.mean(0, keepdim=True)


def standardised(vectors: torch.Tensor) -> torch.Tensor:
    """Centred, each dimension divided by its standard deviation: a few high-variance ("rogue")
    dimensions no longer decide the cosine (Timkey and van Schijndel 2021)."""
    return centred(vectors) / vectors.std(0, keepdim=True).clamp_min(1e-6)


TREATMENTS = {"plain": lambda v: v, "centred": centred, "standardised": standardised}


def run(model: str, data: str, languages: str = "all", batch_size: int = 128) -> dict:
    """{"model"|"random_init": {treatment: [average top-1 per layer]}, "languages": n}."""
    # output: required by the config, never written (this diagnostic only prints)
    cfg = RetrievalConfig(model=model, data=data, output="-", languages=languages)
    pairs = load_parallel(cfg.data, None if languages == "all" else languages.split(","))
    encoders = {"model": load_encoder(cfg), "random_init": load_encoder(cfg, random_init=True)}
    apply_threads(0, hidden_size=encoders["model"].model.config.hidden_size)
    layers = list(range(encoders["model"].depth + 1))
    totals = {name: {t: [0.0] * len(layers) for t in TREATMENTS} for name in encoders}
    tok = encoders["model"].tokenizer
    for parallel in pairs.values():
        en = tokenize(tok, parallel.english, cfg.max_length)
        xx = tokenize(tok, parallel.other, cfg.max_length)
        for name, encoder in encoders.items():
            v_en = embed(encoder, en, layers, batch_size=batch_size)
            v_xx = embed(encoder, xx, layers, batch_size=batch_size)
            for layer in layers:
                for treatment, treat in TREATMENTS.items():
                    top1 = scores(treat(v_xx[layer]), treat(v_en[layer]))["mean"]
                    totals[name][treatment][layer] += top1 / len(pairs)
    rounded = {n: {k: [round(x, 4) for x in v] for k, v in t.items()} for n, t in totals.items()}
    return {"languages": len(pairs), **rounded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="model dir (repeat)")
    parser.add_argument("--data", required=True, help="parallel sentences, as eval retrieval")
    parser.add_argument("--languages", default="all")
    args = parser.parse_args()
    print(json.dumps({m: run(m, args.data, args.languages) for m in args.model}))


if __name__ == "__main__":
    main()
