"""Fine-tune a 3-way NLI classifier on English and evaluate it: our checkpoints or any HF model.

Our exported checkpoints (a directory whose manifest.json has kind "hf-model") load into our
DebertaForSequenceClassification; anything else (a directory or a hub id) into transformers'
AutoModelForSequenceClassification. The loop is the card's run_xnli.py recipe written out: AdamW,
linear warm-up then linear decay, gradient clipping, English dev accuracy every eval_steps and
after every epoch, and the best-on-dev weights kept. A classifier's outputs are matched to
LABELS by its id2label names, so models fine-tuned elsewhere (XTREME orders its labels
contradiction, entailment, neutral) are scored correctly.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from mdeberta import io
from mdeberta.eval.config import FinetuneConfig
from mdeberta.eval.nli import LABELS, Pair, label_id
from mdeberta.hf import load_pretrained, save_pretrained
from mdeberta.manifest import MANIFEST
from mdeberta.precision import autocast, grad_scaler
from mdeberta.progress import progress

# files of which a tokenizer directory holds at least one (DeBERTa, XLM-R, T5, BERT, GPT-2 style)
TOKENIZER_FILES = (
    "tokenizer.json",
    "spm.model",
    "sentencepiece.bpe.model",
    "spiece.model",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
)


class ModelError(ValueError):
    """A model or tokenizer that cannot be used; the message says what is missing."""


@dataclass
class Classifier:
    model: torch.nn.Module
    tokenizer: object
    backend: str  # "mdeberta" (ours) or "hf" (transformers)
    label_names: list[str]  # name of each model output, in output order
    source: str  # where it was loaded from
    order_assumed: bool = False  # True when the outputs had no NLI names and LABELS was assumed

    @property
    def to_model(self) -> torch.Tensor:
        """Model output index of each of our label ids (targets for training)."""
        return torch.tensor([self.label_names.index(name) for name in LABELS])

    @property
    def to_ours(self) -> torch.Tensor:
        """Our label id of each model output index (for predictions)."""
        return torch.tensor([LABELS.index(name) for name in self.label_names])


# runtime helpers


@contextlib.contextmanager
def deterministic(seed: int):
    """Seed every generator and ask torch for deterministic kernels; restore the flag after."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# loading


def is_our_checkpoint(path: str) -> bool:
    """A directory written by our export (or our classifier): manifest.json of kind "hf-model"."""
    url = io.join(path, MANIFEST)
    try:
        return io.exists(url) and io.read_json(url).get("kind") == "hf-model"
    except (OSError, ValueError):
        return False


def _is_local_dir(path: str) -> bool:
    try:
        fs, inner = io.url_to_fs(path)
        return fs.isdir(inner)
    except (ValueError, ImportError):  # a hub id such as "microsoft/mdeberta-v3-base"
        return False


def load_tokenizer(path: str):
    """AutoTokenizer from a directory or hub id; a directory without tokenizer files is an error."""
    from transformers import AutoTokenizer

    if _is_local_dir(path) and not any(io.exists(io.join(path, n)) for n in TOKENIZER_FILES):
        raise ModelError(
            f"{path}: no tokenizer files (none of {', '.join(TOKENIZER_FILES)}); export the model "
            "with its vocabulary, or pass --tokenizer VOCAB_DIR"
        )
    return AutoTokenizer.from_pretrained(path)


def _names(id2label: dict | list | None, n: int) -> tuple[list[str], bool]:
    """Output names as LABELS spells them; LABELS itself (assumed) when they are not NLI names."""
    raw = (
        list(id2label)
        if isinstance(id2label, list)
        else [(id2label or {}).get(i) for i in range(n)]
    )
    ids = [label_id(name) for name in raw]
    if n == len(LABELS) and None not in ids and len(set(ids)) == n:
        return [LABELS[i] for i in ids], False
    return list(LABELS), True


def load_classifier(
    path: str, *, backend: str = "auto", tokenizer: str = "", train: bool = True
) -> Classifier:
    """The classifier to fine-tune (train=True: a fresh head where the checkpoint has none) or to
    evaluate as it is (train=False: its head must have 3 outputs)."""
    if backend == "auto":
        backend = "mdeberta" if is_our_checkpoint(path) else "hf"
    tok = load_tokenizer(tokenizer or path)
    if backend == "mdeberta":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = load_pretrained(path, head="classification", num_labels=len(LABELS))
        fresh = [w for w in caught if "initialised fresh" in str(w.message)]
        if fresh and not train:
            raise ModelError(f"{path}: no classification head to evaluate; drop --eval-only")
        for w in caught:  # a fresh head is expected when training; pass on anything else
            if w not in fresh:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        names, assumed = _names(model.label_names, len(LABELS))
        model.label_names = names
    else:
        model, names, assumed = _load_hf(path, train)
    if assumed and not train:
        warnings.warn(
            f"{path}: outputs are not named entailment/neutral/contradiction; "
            f"assuming the order {LABELS}",
            stacklevel=2,
        )
    return Classifier(model, tok, backend, names, path, order_assumed=assumed and not train)


def _load_hf(path: str, train: bool):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(path)
    if not train:
        if not any(a.endswith("ForSequenceClassification") for a in config.architectures or []):
            raise ModelError(f"{path}: not a sequence classifier; drop --eval-only to fine-tune it")
        if config.num_labels != len(LABELS):
            raise ModelError(f"{path}: a {config.num_labels}-way classifier, not 3-way NLI")
        model = AutoModelForSequenceClassification.from_pretrained(path)
        return (model, *_names(config.id2label, len(LABELS)))
    names, _ = _names(config.id2label, config.num_labels)  # keep a trained NLI head's order
    model = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=len(LABELS),
        id2label=dict(enumerate(names)),
        label2id={name: i for i, name in enumerate(names)},
        ignore_mismatched_sizes=True,  # a checkpoint with another head gets a fresh one
    )
    return model, names, False


# data


@dataclass
class Encoded:
    """Token ids of pairs ([CLS] premise [SEP] hypothesis [SEP], truncated) and our labels."""

    input_ids: list[np.ndarray]  # int32 arrays: a tenth of the memory of lists of ints
    token_type_ids: list[np.ndarray] | None
    labels: torch.Tensor
    pad_id: int

    def __len__(self) -> int:
        return len(self.input_ids)

    def batch(self, indices, device: torch.device) -> dict[str, torch.Tensor]:
        """Pad the chosen pairs to their longest member."""
        width = max(len(self.input_ids[i]) for i in indices)
        ids = torch.full((len(indices), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(indices), width), dtype=torch.long)
        types = torch.zeros((len(indices), width), dtype=torch.long)
        for row, i in enumerate(indices):
            n = len(self.input_ids[i])
            ids[row, :n] = torch.from_numpy(self.input_ids[i])
            mask[row, :n] = 1
            if self.token_type_ids is not None:
                types[row, :n] = torch.from_numpy(self.token_type_ids[i])
        out = {"input_ids": ids, "attention_mask": mask}
        if self.token_type_ids is not None:
            out["token_type_ids"] = types
        return {k: v.to(device) for k, v in out.items()}


def encode(tokenizer, pairs: list[Pair], max_length: int, chunk: int = 10_000) -> Encoded:
    """Tokenize (premise, hypothesis) pairs, truncating the longer side first."""
    ids: list[np.ndarray] = []
    types: list[np.ndarray] | None = []
    for start in progress(range(0, len(pairs), chunk), desc="tokenize", unit="chunk", leave=False):
        part = pairs[start : start + chunk]
        out = tokenizer(
            [p.premise for p in part],
            [p.hypothesis for p in part],
            truncation=True,
            max_length=max_length,
        )
        ids += [np.asarray(x, dtype=np.int32) for x in out["input_ids"]]
        if "token_type_ids" in out and types is not None:
            types += [np.asarray(x, dtype=np.int32) for x in out["token_type_ids"]]
        else:
            types = None  # the model takes none (XLM-R) or ignores them (DeBERTa-v3)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    labels = torch.tensor([p.label for p in pairs], dtype=torch.long)
    return Encoded(ids, types, labels, pad_id)


# evaluation


def _logits(clf: Classifier, batch: dict, precision: str) -> torch.Tensor:
    with autocast(precision, batch["input_ids"].device):
        return clf.model(**batch).logits.float()


@torch.inference_mode()
def predict(
    clf: Classifier, data: Encoded, *, batch_size: int, precision: str = "fp32", desc: str = "eval"
) -> torch.Tensor:
    """Our label id predicted for every pair, in input order. Batches go longest first, so
    padding is small and the memory peak comes at once."""
    device = next(clf.model.parameters()).device
    was_training = clf.model.training
    clf.model.eval()
    order = sorted(range(len(data)), key=lambda i: -len(data.input_ids[i]))
    preds = torch.empty(len(data), dtype=torch.long)
    to_ours = clf.to_ours
    for start in progress(range(0, len(order), batch_size), desc=desc, unit="batch", leave=False):
        chunk = order[start : start + batch_size]
        logits = _logits(clf, data.batch(chunk, device), precision)
        preds[chunk] = to_ours[logits.argmax(-1).cpu()]
    clf.model.train(was_training)
    return preds


def accuracy(preds: torch.Tensor, data: Encoded) -> float:
    return float((preds == data.labels).double().mean()) if len(data) else float("nan")


# fine-tuning


@dataclass
class FinetuneResult:
    steps: int
    warmup_steps: int
    best_step: int
    best_dev_accuracy: float | None
    # {step, epoch, train_loss, dev_accuracy} (fp16 adds skipped_steps: overflowed, not applied)
    history: list[dict] = field(default_factory=list)


def linear_schedule(warmup: int, total: int):
    """lr multiplier: 0 -> 1 over `warmup` steps, then 1 -> 0 at `total` (HF's linear schedule)."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def finetune(
    clf: Classifier, train: Encoded, dev: Encoded | None, cfg: FinetuneConfig
) -> FinetuneResult:
    """Train on `train`, score `dev` as configured, and leave the best-on-dev weights loaded."""
    model, device = clf.model, next(clf.model.parameters()).device
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = max(1, math.ceil(cfg.epochs * steps_per_epoch))
    warmup = min(cfg.warmup_steps, int(cfg.warmup_max_fraction * total))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, eps=cfg.adam_eps, weight_decay=cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_schedule(warmup, total))
    generator = torch.Generator().manual_seed(cfg.seed)
    targets = clf.to_model[train.labels]
    result = FinetuneResult(total, warmup, best_step=total, best_dev_accuracy=None)
    best_state, losses, skipped = None, [], 0
    scaler = grad_scaler(cfg.precision, device)  # fp16: dynamic loss scaling
    model.train()
    bar = progress(total=total, desc="fine-tune", unit="step")
    for step in range(1, total + 1):
        epoch, within = divmod(step - 1, steps_per_epoch)
        if within == 0:
            order = torch.randperm(len(train), generator=generator).tolist()
        chunk = order[within * cfg.batch_size : (within + 1) * cfg.batch_size]
        logits = _logits(clf, train.batch(chunk, device), cfg.precision)
        loss = F.cross_entropy(logits, targets[chunk].to(device))
        if scaler is None:
            loss.backward()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        if cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        if scaler is None:
            optimizer.step()
        else:
            scale = scaler.get_scale()
            scaler.step(optimizer)
            scaler.update()
            skipped += scaler.get_scale() < scale  # the scale drops exactly when a step is skipped
        with warnings.catch_warnings():  # a step the fp16 scaler skipped still uses up its rate
            warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()`"))
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        end_of_epoch = within == steps_per_epoch - 1 or step == total
        if end_of_epoch or (cfg.eval_steps and step % cfg.eval_steps == 0):
            record = {"step": step, "epoch": epoch + 1, "train_loss": sum(losses) / len(losses)}
            if scaler is not None:
                record["skipped_steps"], skipped = skipped, 0
            losses = []
            if dev is not None:
                best_state = _score_dev(clf, dev, cfg, record, result) or best_state
            result.history.append(record)
            bar.write(", ".join(f"{k} {v:.4g}" for k, v in record.items()))
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result


def _score_dev(clf: Classifier, dev: Encoded, cfg: FinetuneConfig, record: dict, result):
    """Add the dev accuracy to `record`; a CPU copy of the weights if they are the best yet."""
    preds = predict(clf, dev, batch_size=cfg.eval_batch_size, precision=cfg.precision, desc="dev")
    record["dev_accuracy"] = accuracy(preds, dev)
    if result.best_dev_accuracy is not None and record["dev_accuracy"] <= result.best_dev_accuracy:
        return None  # ties keep the earlier step
    result.best_step, result.best_dev_accuracy = record["step"], record["dev_accuracy"]
    return {k: v.detach().to("cpu", copy=True) for k, v in clf.model.state_dict().items()}


def save_classifier(clf: Classifier, path: str) -> None:
    """Write the classifier as an HF directory with its tokenizer (loadable by --eval-only)."""
    import tempfile

    fs, inner = io.url_to_fs(path)
    local = "file" in fs.protocol  # a str or a tuple of names
    with tempfile.TemporaryDirectory() as tmp:
        target = inner if local else tmp
        names = list(clf.label_names)  # the outputs' meaning is what id2label records
        if clf.backend == "mdeberta":
            clf.model.label_names = names
            save_pretrained(clf.model, target)
        else:
            clf.model.config.id2label = dict(enumerate(names))
            clf.model.config.label2id = {name: i for i, name in enumerate(names)}
            clf.model.save_pretrained(target)
        clf.tokenizer.save_pretrained(target)
        if not local:
            fs.put(tmp, inner, recursive=True)
