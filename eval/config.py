"""Settings of `mdeberta eval xnli`: the fine-tuning recipe and the run (model, data, outputs).

Torch-free, so the command line can take its defaults and help texts from here without importing
anything heavy. Defaults follow the mDeBERTa-v3-base model card's XNLI recipe (run_xnli.py with
lr 2e-5, 8 GPUs x 4 = batch 32, max length 256, 3000 warm-up steps, linear decay, AdamW with
weight decay 0 and eps 1e-8, max grad norm 1) except the number of epochs: the card trains 6,
XTREME's train_xnli.sh 5 (at max length 128, evaluating English dev every 100 steps); we default to
3, which costs half the card's compute and is where English dev accuracy usually levels off.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mdeberta.config import check

PRECISIONS = ("fp32", "bf16", "fp16")
BACKENDS = ("auto", "mdeberta", "hf")


@dataclass
class FinetuneConfig:
    """The fine-tuning recipe (train on English, select on English dev)."""

    epochs: float = 3.0
    """Passes over the training set (card: 6, XTREME: 5); fractions stop mid-epoch."""
    lr: float = 2e-5
    """Peak learning rate of AdamW (card and XTREME: 2e-5)."""
    batch_size: int = 32
    """Training pairs per optimizer step (card: 8 GPUs x 4; XTREME: 8 x 4 accumulation)."""
    max_length: int = 256
    """Tokens per pair after truncation, [CLS] and [SEP]s included (card: 256, XTREME: 128)."""
    warmup_steps: int = 3000
    """Linear warm-up steps (card: 3000), clipped to warmup_max_fraction of a shorter run."""
    warmup_max_fraction: float = 0.1
    """Largest share of the run spent warming up, so short runs still reach the peak lr."""
    weight_decay: float = 0.0
    """AdamW weight decay (HF Trainer's and XTREME's default: 0)."""
    adam_eps: float = 1e-8
    """AdamW epsilon."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm; 0 turns clipping off."""
    eval_steps: int = 1000
    """Evaluate English dev every this many steps (and after every epoch); 0: only per epoch."""
    eval_batch_size: int = 128
    """Pairs per evaluation batch (batches are sorted by length, so little padding)."""
    seed: int = 42
    """Seed of the head's initialisation, dropout and data order: same seed, same run."""
    precision: str = "fp32"
    """fp32 (as the card advises), bf16 (autocast; faster, slightly different) or fp16 (autocast
    with dynamic loss scaling, for GPUs without bf16). bf16 and fp16 are meant for CUDA; on a CPU
    they run, slowly."""
    device: str = "auto"
    """auto (cuda if available, else cpu), cpu, cuda or cuda:N."""
    threads: int = 0
    """torch intra-op threads; 0 = auto: OMP_NUM_THREADS if set, else 1 for a model narrower than
    256, else every core this process may use (mdeberta/threads.py)."""

    def __post_init__(self) -> None:
        check(self.threads >= 0, f"threads must be >= 0 (0: auto), got {self.threads}")
        check(self.epochs > 0, f"epochs must be > 0, got {self.epochs}")
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.max_length >= 8, f"max_length must be >= 8, got {self.max_length}")
        check(self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}")
        check(
            0 <= self.warmup_max_fraction <= 1,
            f"warmup_max_fraction must be in [0, 1], got {self.warmup_max_fraction}",
        )
        check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        check(self.adam_eps > 0, f"adam_eps must be > 0, got {self.adam_eps}")
        check(self.max_grad_norm >= 0, f"max_grad_norm must be >= 0, got {self.max_grad_norm}")
        check(self.eval_steps >= 0, f"eval_steps must be >= 0, got {self.eval_steps}")
        check(
            self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}"
        )
        check(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}")


@dataclass
class XnliConfig:
    """One `mdeberta eval xnli` run."""

    model: str
    """Model directory, URL or Hugging Face hub id (a pretrained encoder, or with eval_only a
    fine-tuned classifier)."""
    output: str
    """Directory for xnli.json, xnli.md, xnli.png, the selected classifier and the manifest."""
    train: str = "hub:facebook/xnli"
    """English training source (see docs/xnli.md: hub:, xnli-tsv:, multinli:, mt-tsv:, disk:)."""
    dev: str = ""
    """Selection source: its English pairs pick the checkpoint; empty: the test source's dev set
    (a hub dataset's validation split, xnli.dev.tsv beside a local xnli.test.tsv); "none" keeps
    the last step."""
    test: str = "hub:facebook/xnli"
    """Evaluation source holding every requested language."""
    languages: str = "xnli"
    """Languages to evaluate: "xnli" (all 15) or a comma list such as "en,de,sw"."""
    train_language: str = "en"
    """Language of the training pairs (en: zero-shot transfer; another: translate-train)."""
    max_train_examples: int = 0
    """Train on a seeded random subset of this many pairs; 0: all."""
    max_eval_examples: int = 0
    """Evaluate on the first this many pairs per language (dev and test); 0: all."""
    eval_only: bool = False
    """Evaluate `model` as an already fine-tuned 3-way NLI classifier; no training."""
    backend: str = "auto"
    """auto (our classifier for our exported checkpoints, else transformers'), mdeberta or hf."""
    tokenizer: str = ""
    """Tokenizer directory or hub id; empty: the model's own."""
    save_classifier: bool = True
    """Save the selected classifier under {output}/classifier (for a later eval_only run)."""
    max_malformed_fraction: float = 0.01
    """Fail when more than this share of a file's rows is malformed (they are always counted)."""
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    """The fine-tuning recipe."""

    def __post_init__(self) -> None:
        check(bool(self.model), "model must be given")
        check(bool(self.output), "output must be given")
        check(self.max_train_examples >= 0, "max_train_examples must be >= 0")
        check(self.max_eval_examples >= 0, "max_eval_examples must be >= 0")
        check(self.backend in BACKENDS, f"backend must be one of {BACKENDS}, got {self.backend!r}")
        check(
            0 <= self.max_malformed_fraction <= 1,
            f"max_malformed_fraction must be in [0, 1], got {self.max_malformed_fraction}",
        )


@dataclass
class RetrievalConfig:
    """One `mdeberta eval retrieval` run (the XTREME Tatoeba protocol, see docs/retrieval.md)."""

    model: str
    """Model directory, URL or Hugging Face hub id of an encoder (our export or any HF model)."""
    data: str
    """Parallel sentences: laser:DIR (tatoeba.xx-eng.*), tsv:PATH (english<TAB>translation),
    hub:google/xtreme (tatoeba.* configs) or xnli-tsv:PATH; a bare path is recognised."""
    output: str
    """Directory for retrieval.json, retrieval.md, retrieval.png and the manifest."""
    languages: str = "all"
    """Languages to score: "all" in the source (English aside) or a comma list (de,zh-Hans,deu)."""
    layer: int | None = None
    """Hidden state to pool: 0 = embeddings, L = last layer, negative from the end (-1 = last);
    None: XTREME's choice scaled to depth, round(2/3 of the layers) (8 of 12)."""
    all_layers: bool = False
    """Score every layer from the same forward pass and plot accuracy by layer."""
    pool_special: bool = True
    """Include [CLS] and [SEP] in the mean pooling (XTREME does); false leaves specials out."""
    baselines: bool = True
    """Score the same architecture at a seeded random initialisation and a TF-IDF bag of token
    ids in the same run and table."""
    seed: int = 0
    """Seed of the random-initialisation baseline."""
    max_length: int = 128
    """Tokens per sentence after truncation, [CLS] and [SEP] included."""
    batch_size: int = 64
    """Sentences per forward pass (batches are grouped by length, so little padding)."""
    backend: str = "auto"
    """auto (our model class for our exports, else transformers'), mdeberta or hf."""
    tokenizer: str = ""
    """Tokenizer directory or hub id; empty: the model's own."""
    precision: str = "fp32"
    """fp32, bf16 or fp16 (autocast for inference; pooling and similarities stay fp32)."""
    device: str = "auto"
    """auto (cuda if available, else cpu), cpu, cuda or cuda:N."""
    threads: int = 0
    """torch intra-op threads; 0 = auto: OMP_NUM_THREADS if set, else 1 for a model narrower than
    256, else every core this process may use (mdeberta/threads.py)."""

    def __post_init__(self) -> None:
        check(self.threads >= 0, f"threads must be >= 0 (0: auto), got {self.threads}")
        check(bool(self.model), "model must be given")
        check(bool(self.data), "data must be given")
        check(bool(self.output), "output must be given")
        check(self.max_length >= 4, f"max_length must be >= 4, got {self.max_length}")
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.backend in BACKENDS, f"backend must be one of {BACKENDS}, got {self.backend!r}")
        check(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}")
