"""`mdeberta eval xnli`: zero-shot cross-lingual XNLI in one run.

    results = run_xnli(XnliConfig(model="runs/base/hf/discriminator", output="xnli/base"))

Train a classifier on English, keep the step with the best English dev accuracy (XTREME's
"true zero-shot" protocol: no target-language data is seen), then score every requested
language's test set in the same process. With eval_only the model is taken as an already
fine-tuned classifier. The test data is loaded first, so a language missing from it fails before
any training. Outputs: xnli.json, xnli.md, xnli.png, classifier/ and manifest.json, written last.
"""

from __future__ import annotations

import logging
import os
import random
import time

from mdeberta import io
from mdeberta.config import config_to_dict
from mdeberta.eval import finetune as ft
from mdeberta.eval.config import XnliConfig
from mdeberta.eval.data import default_dev, load_nli
from mdeberta.eval.hub import check_model_source
from mdeberta.eval.nli import LABELS, NLIData, Pair
from mdeberta.eval.report import mean, write_reports
from mdeberta.languages import XNLI_LANGUAGES, get_language
from mdeberta.lock import locks_output
from mdeberta.manifest import MANIFEST, invalidate, read_manifest, write_manifest
from mdeberta.threads import apply_threads

FORMAT_VERSION = 1
CLASSIFIER_DIR = "classifier"
log = logging.getLogger(__name__)


def xnli_languages(spec: str) -> list[str]:
    """Language codes as XNLI writes them: "xnli" (or "all") for the 15, or a comma list."""
    codes: list[str] = []
    for token in (t.strip() for t in spec.split(",")):
        if token.lower() in ("xnli", "all"):
            codes += XNLI_LANGUAGES
        elif token:
            get_language(token)  # UnknownLanguageError suggests the nearest codes
            codes.append(token)
    if not codes:
        raise ValueError(f"no languages in {spec!r}; use xnli or a list such as en,de,sw")
    return list(dict.fromkeys(codes))


def subsample(pairs: list[Pair], limit: int, seed: int) -> list[Pair]:
    """A seeded random subset of `limit` pairs in their original order (all when limit is 0)."""
    if not limit or limit >= len(pairs):
        return pairs
    keep = sorted(random.Random(seed).sample(range(len(pairs)), limit))
    return [pairs[i] for i in keep]


def _prepare_output(output: str) -> None:
    """Make the output dir; drop a previous run's manifest so a failed re-run looks incomplete."""
    io.makedirs(output)
    if io.exists(io.join(output, MANIFEST)):
        read_manifest(output, kind="xnli-results")  # refuse to write into another artifact
    invalidate(output)


def _load_data(cfg: XnliConfig, languages: list[str]) -> dict[str, NLIData | None]:
    def load(spec: str, role: str, langs: list[str]) -> NLIData:
        return load_nli(spec, role, langs, max_malformed_fraction=cfg.max_malformed_fraction)

    data: dict[str, NLIData | None] = {"test": load(cfg.test, "test", languages)}
    data["train"] = data["dev"] = None
    if not cfg.eval_only:
        data["train"] = load(cfg.train, "train", [cfg.train_language])
        dev = cfg.dev.strip() or default_dev(cfg.test)
        if dev.lower() != "none":
            data["dev"] = load(dev, "dev", ["en"])
    for role, d in data.items():
        if d is not None and d.skipped:
            log.warning("%s %s: skipped rows %s", role, d.source, dict(d.skipped))
    return data


@locks_output("cfg.output")
def run_xnli(cfg: XnliConfig) -> dict:
    """Fine-tune (unless eval_only), evaluate every language, write the reports and manifest."""
    clock = {"start": time.monotonic()}
    languages = xnli_languages(cfg.languages)
    check_model_source(cfg.model)
    _prepare_output(cfg.output)
    data = _load_data(cfg, languages)
    with ft.deterministic(cfg.finetune.seed):
        device = ft.resolve_device(cfg.finetune.device)
        clf = ft.load_classifier(
            cfg.model, backend=cfg.backend, tokenizer=cfg.tokenizer, train=not cfg.eval_only
        )
        clf.model.to(device)
        apply_threads(cfg.finetune.threads, hidden_size=clf.model.config.hidden_size)
        clock["loaded"] = time.monotonic()
        selection = {} if cfg.eval_only else _train(clf, cfg, data)
        clock["trained"] = time.monotonic()
        accuracy, examples = _evaluate(clf, cfg, data["test"], languages)
    clock["evaluated"] = time.monotonic()
    results = _results(cfg, clf, data, selection, accuracy, examples)
    results["device"] = str(device)
    results["seconds"] = {
        "load": round(clock["loaded"] - clock["start"], 2),
        "finetune": round(clock["trained"] - clock["loaded"], 2),
        "evaluate": round(clock["evaluated"] - clock["trained"], 2),
    }
    files = write_reports(cfg.output, results)
    write_manifest(
        cfg.output,
        "xnli-results",
        FORMAT_VERSION,
        options=config_to_dict(cfg),
        inputs={"model": cfg.model} if _has_manifest(cfg.model) else {},
        files=files,
        extra={"average": results["average"], "accuracy": accuracy},
    )
    return results


def _train(clf, cfg: XnliConfig, data: dict[str, NLIData | None]) -> dict:
    """Fine-tune on the training language, select on English dev; the selection record."""
    hp = cfg.finetune
    train = subsample(data["train"].pairs[cfg.train_language], cfg.max_train_examples, hp.seed)
    dev = data["dev"].pairs["en"][: cfg.max_eval_examples or None] if data["dev"] else None
    result = ft.finetune(
        clf,
        ft.encode(clf.tokenizer, train, hp.max_length),
        ft.encode(clf.tokenizer, dev, hp.max_length) if dev else None,
        hp,
    )
    if cfg.save_classifier:
        _save_classifier(clf, cfg)
    return vars(result) | {"train_pairs": len(train)}


def _evaluate(clf, cfg: XnliConfig, test: NLIData, languages: list[str]):
    """Accuracy and number of pairs per language."""
    hp, accuracy, examples = cfg.finetune, {}, {}
    for lang in languages:
        pairs = test.pairs[lang][: cfg.max_eval_examples or None]
        encoded = ft.encode(clf.tokenizer, pairs, hp.max_length)
        preds = ft.predict(
            clf, encoded, batch_size=hp.eval_batch_size, precision=hp.precision, desc=lang
        )
        accuracy[lang], examples[lang] = ft.accuracy(preds, encoded), len(encoded)
        log.info("%s: %.2f%% of %d", lang, 100 * accuracy[lang], len(encoded))
    return accuracy, examples


def _results(cfg: XnliConfig, clf, data, selection: dict, accuracy, examples) -> dict:
    """The content of xnli.json."""
    return {
        "format_version": FORMAT_VERSION,
        "model": {
            "path": cfg.model,
            "name": os.path.basename(cfg.model.rstrip("/")) or cfg.model,
            "backend": clf.backend,
            "output_labels": clf.label_names,
            "label_order_assumed": clf.order_assumed,
            "tokenizer": cfg.tokenizer or cfg.model,
        },
        "labels": list(LABELS),
        "data": {role: d.summary() if d else None for role, d in data.items()},
        "eval_only": cfg.eval_only,
        "seed": cfg.finetune.seed,
        "hyperparameters": config_to_dict(cfg.finetune)
        | {
            "steps": selection.get("steps"),
            "warmup_steps_used": selection.get("warmup_steps"),
            "max_train_examples": cfg.max_train_examples,
            "max_eval_examples": cfg.max_eval_examples,
            "train_language": cfg.train_language,
        },
        "selection": selection,
        "languages": list(accuracy),
        "accuracy": accuracy,
        "examples": examples,
        "average": mean(accuracy.values()),
    }


def _has_manifest(path: str) -> bool:
    try:
        return io.exists(io.join(path, MANIFEST))
    except (ValueError, ImportError):  # a hub id
        return False


def _save_classifier(clf, cfg: XnliConfig) -> None:
    """classifier/ beside the reports; ours gets an hf-model manifest so eval_only finds it ours."""
    path = io.join(cfg.output, CLASSIFIER_DIR)
    ft.save_classifier(clf, path)
    if clf.backend == "mdeberta":
        inputs = {"pretrained": cfg.model} if _has_manifest(cfg.model) else {}
        extra = {"head": "classification", "labels": clf.label_names}
        write_manifest(path, "hf-model", 1, options=config_to_dict(cfg), inputs=inputs, extra=extra)
