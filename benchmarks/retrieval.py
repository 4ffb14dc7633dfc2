"""Retrieval embedding speed: our path vs a plain loop of the transformers model, same batches.

    python benchmarks/retrieval.py                       # xsmall shape, the packaged XNLI text
    python benchmarks/retrieval.py --model models/x/discriminator --data laser:tatoeba/

Both sides embed the same sentences, in the same length-sorted batches, at every layer:
  ours      `mdeberta.eval.retrieval.embed` as `eval retrieval` runs it (our DebertaModel for our
            exports, hidden states through forward hooks, mean pooling per layer)
  baseline  transformers' AutoModel.from_pretrained on the same directory, called in a loop with
            output_hidden_states=True, mean-pooled the same way
Without --model a random-initialised model of the chosen preset is written with a vocabulary
trained here on the fixture's text. Prints JSON: sentences per second of each and their ratio
(ours / baseline; the issue's bar is >= 1.0), median of --repeats paired runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mdeberta import resources_path
from mdeberta.eval.config import RetrievalConfig
from mdeberta.eval.parallel import load_parallel
from mdeberta.eval.retrieval import embed, length_batches, load_encoder, mean_pool, pad, tokenize


def write_model(folder: Path, preset: str, sentences: list[str]) -> Path:
    """A random-initialised export of `preset` with a unigram vocabulary of the given text."""
    import io

    import sentencepiece as spm

    from mdeberta.hf import save_pretrained
    from mdeberta.manifest import write_manifest
    from mdeberta.model import DebertaConfig, DebertaModel
    from mdeberta.vocab.tokenizer import write_tokenizer_files

    model_proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model_proto, vocab_size=2000,
        model_type="unigram", minloglevel=2, hard_vocab_limit=False, pad_id=0, bos_id=1, eos_id=2,
        unk_id=3, pad_piece="[PAD]", bos_piece="[CLS]", eos_piece="[SEP]", unk_piece="[UNK]",
    )  # fmt: skip
    vocab = folder / "vocab"
    vocab.mkdir(parents=True)
    (vocab / "spm.model").write_bytes(model_proto.getvalue())
    ids = write_tokenizer_files(str(vocab), model_proto.getvalue())
    torch.manual_seed(0)
    config = DebertaConfig.preset(preset, vocab_size=max(ids.values()) + 1)
    save_pretrained(DebertaModel(config), str(folder / "model"), tokenizer_dir=str(vocab))
    write_manifest(str(folder / "model"), "hf-model", 1, options={"preset": preset})
    return folder / "model"


def plain_hf_loop(model, token_ids, batches, pad_id: int, layers: list[int]) -> None:
    """The baseline: the transformers model over the same batches, every layer mean-pooled."""
    with torch.no_grad():
        for rows in batches:
            ids, mask = pad(token_ids, rows, pad_id)
            states = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            for layer in layers:
                mean_pool(states.hidden_states[layer].float(), mask.bool())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="an export dir (default: a random xsmall)")
    parser.add_argument("--preset", default="xsmall")
    parser.add_argument("--data", default=f"xnli-tsv:{resources_path('xnli')}")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_parallel(args.data)
    sentences = [s for pairs in data.values() for s in (*pairs.english, *pairs.other)]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or str(write_model(Path(tmp), args.preset, sentences))
        cfg = RetrievalConfig(model=model_dir, data=args.data, output=tmp, device="cpu")
        ours = load_encoder(cfg)
        from transformers import AutoModel

        theirs = AutoModel.from_pretrained(model_dir).eval()
        token_ids = tokenize(ours.tokenizer, sentences, cfg.max_length)
        layers = list(range(ours.depth + 1))
        batches = length_batches(token_ids, args.batch_size)
        pad_id = ours.tokenizer.pad_token_id or 0
        times = {"ours": [], "baseline": []}
        for _ in range(args.repeats):  # paired, alternating: drift on a shared machine cancels
            t0 = time.perf_counter()
            embed(ours, token_ids, layers, batch_size=args.batch_size)
            t1 = time.perf_counter()
            plain_hf_loop(theirs, token_ids, batches, pad_id, layers)
            t2 = time.perf_counter()
            times["ours"].append(t1 - t0)
            times["baseline"].append(t2 - t1)
    ratios = [b / a for a, b in zip(times["ours"], times["baseline"], strict=True)]
    print(
        json.dumps(
            {
                "model": args.model or f"random {args.preset}",
                "backend": ours.backend,
                "sentences": len(sentences),
                "layers": len(layers),
                "batch_size": args.batch_size,
                "threads": args.threads,
                "ours_sentences_per_s": round(len(sentences) / statistics.median(times["ours"]), 1),
                "baseline_sentences_per_s": round(
                    len(sentences) / statistics.median(times["baseline"]), 1
                ),
                "ratio_median": round(statistics.median(ratios), 3),
                "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
                "target": ">= 1.0",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
