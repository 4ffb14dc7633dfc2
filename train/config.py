"""The training configuration: a TOML file (train/configs/*.toml) plus `--set key=value` overrides.

    cfg = load_train_config("train/configs/tiny.toml", ["steps=20", "model.hidden_size=64"])

Defaults follow the DeBERTa-v3 paper and the official code (docs/training.md lists the sources):
15% masking with all [MASK], λ = 50, AdamW β (0.9, 0.98), ε 1e-6, weight decay 0.01, warm-up then
linear decay, clipping at 1.0, a generator of the same width and half the depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mdeberta.config import ConfigError, check, load_config

PRESETS = ("tiny", "xsmall", "small", "base", "large")


@dataclass
class ModelConfig:
    """Discriminator size (a preset plus optional overrides) and the generator's depth."""

    preset: str = "base"
    """Size preset of mdeberta.model.DebertaConfig: tiny, xsmall, small, base (mDeBERTa-v3-base),
    large."""
    hidden_size: int | None = None
    """Override the preset's width (shared by generator and discriminator)."""
    num_hidden_layers: int | None = None
    """Override the preset's discriminator depth."""
    num_attention_heads: int | None = None
    """Override the preset's attention heads (hidden_size must be a multiple)."""
    intermediate_size: int | None = None
    """Override the preset's feed-forward width."""
    hidden_dropout_prob: float | None = None
    """Override the dropout on embeddings and residual branches (preset: 0.1)."""
    attention_probs_dropout_prob: float | None = None
    """Override the dropout on attention probabilities (preset: 0.1)."""
    position_buckets: int | None = None
    """Override the relative-position buckets k (preset: 256)."""
    max_relative_positions: int | None = None
    """Override the distance at which the log buckets saturate (preset: 512)."""
    max_position_embeddings: int | None = None
    """Override the longest input the model is built for (preset: 512; >= the shards' seq_len)."""
    generator_layers: int | None = None
    """Generator depth; None = half the discriminator's (DeBERTa-v3), at least 1."""
    vocab_multiple: int = 128
    """Round the embedding rows up to a multiple of this (tensor-core friendly); the extra rows are
    never sampled as replacements. The tokenizer's size comes from the shards' manifest."""

    def __post_init__(self) -> None:
        check(self.preset in PRESETS, f"model.preset must be one of {PRESETS}, got {self.preset!r}")
        check(
            self.generator_layers is None or self.generator_layers >= 1,
            "model.generator_layers must be >= 1 (or unset for half depth), "
            f"got {self.generator_layers}",
        )
        check(
            self.vocab_multiple >= 1,
            f"model.vocab_multiple must be >= 1, got {self.vocab_multiple}",
        )
        # lazy: keeps `mdeberta --help` light (the model imports torch)
        from mdeberta.model import DebertaConfig  # validates the overrides against the preset

        try:
            DebertaConfig.preset(self.preset, **self.overrides())
        except ConfigError as e:
            raise ConfigError(f"model: {e}") from None

    def overrides(self) -> dict:
        names = (
            "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "hidden_dropout_prob", "attention_probs_dropout_prob", "position_buckets",
            "max_relative_positions", "max_position_embeddings",
        )  # fmt: skip
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass
class TrainConfig:
    """Everything a run needs besides its data and output directories."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """Model sizes: [model] table in TOML, model.<key>=... with --set."""
    sharing: Literal["gdes", "es", "nes"] = "gdes"
    """Embedding sharing: gdes (E_D = stopgrad(E_G) + E_delta), es (one table), nes (separate)."""
    mask_prob: float = 0.15
    """Fraction of the non-special tokens of each sequence selected for prediction."""
    mask_policy: Literal["mask", "80-10-10"] = "mask"
    """What the generator sees at selected tokens: all [MASK] (official v3) or BERT's 80/10/10."""
    rtd_weight: float = 50.0
    """λ in loss = MLM + λ·RTD (ELECTRA and the v3 paper: 50; the official code's default: 10)."""
    decoupled: bool = False
    """Official decoupled mode: separate optimizers; G steps on MLM, then D on λ·RTD (seeing the
    updated E_G)."""
    lr: float = 1e-4
    """Peak learning rate (of both models in joint mode; of the generator in decoupled mode)."""
    discriminator_lr: float | None = None
    """Decoupled mode only: the discriminator's peak learning rate; None = lr."""
    adam_beta1: float = 0.9
    """AdamW β1."""
    adam_beta2: float = 0.98
    """AdamW β2 (the DeBERTa papers' 0.98; the official code's default is 0.999)."""
    adam_eps: float = 1e-6
    """AdamW ε."""
    weight_decay: float = 0.01
    """Decoupled weight decay; biases and LayerNorm weights get none (E_delta does get it)."""
    warmup_steps: int = 10000
    """Steps of linear warm-up to the peak learning rate, then linear decay to 0 at `steps`; at
    most warmup_max_fraction of the run."""
    warmup_max_fraction: float = 0.1
    """Largest share of the run spent warming up: a longer warm-up is clipped to it, with a
    notice (a recipe's 10000 steps on a run shortened with --set steps=1000 become 100)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 disables); per optimizer in decoupled mode."""
    steps: int = 100000
    """Optimizer steps to train."""
    batch_size: int = 256
    """Global batch: sequences per optimizer step over all processes and accumulation steps."""
    micro_batch_size: int = 32
    """Sequences per process per forward; batch_size / (micro_batch_size * processes) is the number
    of gradient-accumulation steps and must be a whole number."""
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """auto = bf16 autocast on GPU, fp32 on CPU; fp16 = autocast with dynamic loss scaling (for
    GPUs without bf16; skipped steps are counted in metrics.jsonl). Weights and optimizer states
    are always fp32."""
    compile: bool = False
    """torch.compile the model for training: one graph per sequence length, compiled in the first
    steps (which are therefore slow); eager when false."""
    compile_backend: str = "inductor"
    """torch.compile backend: inductor (generated kernels, the fast one), or aot_eager (traces
    forward and backward without generating code: what the CPU tests use)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto = CUDA when available (one GPU per process, from LOCAL_RANK), else CPU."""
    seed: int = 0
    """Seeds model initialisation, data order, masks, replacement sampling and dropout."""
    num_workers: int = 0
    """DataLoader worker processes per rank; they also do the masking, so on a GPU use >= 1 (the
    order of samples and the masks do not depend on it)."""
    threads: int = 0
    """torch intra-op threads per process; 0 = auto: OMP_NUM_THREADS if set, else 1 for a model
    narrower than 256 (tiny), else this process's share of the cores less its DataLoader workers
    (mdeberta/threads.py)."""
    verify_data: bool = False
    """Hash every token shard against its manifest before the first step (a full read of the
    data, shared by the ranks). Without it, sizes are checked at start and each shard is hashed
    when first read."""
    log_interval: int = 10
    """Write a metrics.jsonl line (averaged over this many steps) every this many steps."""
    eval_data: str | None = None
    """Held-out token shards (`mdeberta shard` on held-out text, with the training vocabulary):
    MLM loss, RTD loss and RTD accuracy on them go into metrics.jsonl every eval_interval steps
    (eval_mlm_loss, eval_rtd_loss, eval_rtd_accuracy, ...)."""
    eval_interval: int = 0
    """Score eval_data every this many steps (a multiple of log_interval) and at the last step;
    0: never."""
    eval_sequences: int = 1024
    """Held-out sequences scored (the first N of eval_data), the same ones, masked the same way,
    every time."""
    checkpoint_interval: int = 1000
    """Save a checkpoint every this many steps (a multiple of log_interval), and at the end."""
    keep_checkpoints: int = 3
    """Keep the last K checkpoints; older ones are deleted once a newer one is complete."""
    init_from: str | None = None
    """Continue pretraining from a Hugging Face model dir (see docs/training.md: how E_G, E_delta
    and the generator are initialised), or from an export of this trainer (discriminator/ and
    generator/)."""
    export_at_end: bool = True
    """Export hf/discriminator and hf/generator into the run directory when training finishes."""
    progress_bar: bool = True
    """Show progress (rank 0) with the losses and tokens/s: a bar on a terminal; when the standard
    error is a file or a pipe, a plain line every 30 s (mdeberta/progress.py)."""
    fresh: bool = False
    """Start over in a run directory that holds an earlier run: delete that run's checkpoints,
    metrics, export and manifest first (saying what went) instead of resuming from it."""

    def __post_init__(self) -> None:
        check(0 < self.mask_prob < 1, f"mask_prob must be in (0, 1), got {self.mask_prob}")
        check(self.rtd_weight > 0, f"rtd_weight must be > 0, got {self.rtd_weight}")
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(
            self.discriminator_lr is None or self.discriminator_lr > 0,
            f"discriminator_lr must be > 0 or unset, got {self.discriminator_lr}",
        )
        check(
            self.discriminator_lr is None or self.decoupled,
            "discriminator_lr needs decoupled=true (joint mode has one optimizer and one lr)",
        )
        check(
            not (self.decoupled and self.sharing == "es"),
            "decoupled=true cannot be used with sharing='es': one table trained by both losses "
            "would get its RTD gradient dropped by the generator's optimizer; use gdes or nes",
        )
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            check(0 <= value < 1, f"{name} must be in [0, 1), got {value}")
        check(self.adam_eps > 0, f"adam_eps must be > 0, got {self.adam_eps}")
        check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        check(self.grad_clip >= 0, f"grad_clip must be >= 0 (0 disables), got {self.grad_clip}")
        check(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        check(self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}")
        check(
            0 <= self.warmup_max_fraction <= 1,
            f"warmup_max_fraction must be in [0, 1], got {self.warmup_max_fraction}",
        )
        check(
            self.micro_batch_size >= 1,
            f"micro_batch_size must be >= 1, got {self.micro_batch_size}",
        )
        check(
            self.batch_size >= self.micro_batch_size
            and self.batch_size % self.micro_batch_size == 0,
            f"batch_size ({self.batch_size}) must be a multiple of micro_batch_size "
            f"({self.micro_batch_size})",
        )
        check(self.compile_backend != "", "compile_backend must name a torch.compile backend")
        check(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}")
        check(self.threads >= 0, f"threads must be >= 0 (0: auto), got {self.threads}")
        check(self.log_interval >= 1, f"log_interval must be >= 1, got {self.log_interval}")
        check(
            self.eval_interval >= 0 and self.eval_interval % self.log_interval == 0,
            f"eval_interval ({self.eval_interval}) must be 0 or a multiple of log_interval "
            f"({self.log_interval}): a score goes into that step's metrics line",
        )
        check(
            self.eval_data is None or self.eval_interval > 0,
            "eval_data needs eval_interval > 0 (how often to score it)",
        )
        check(self.eval_sequences >= 1, f"eval_sequences must be >= 1, got {self.eval_sequences}")
        check(
            self.checkpoint_interval >= 1 and self.checkpoint_interval % self.log_interval == 0,
            f"checkpoint_interval ({self.checkpoint_interval}) must be a positive multiple of "
            f"log_interval ({self.log_interval}), so a resumed run logs the same averages",
        )
        check(
            self.keep_checkpoints >= 1,
            f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}",
        )

    def warmup(self) -> int:
        """The warm-up steps the run uses: warmup_steps, at most warmup_max_fraction of steps."""
        return min(self.warmup_steps, int(self.warmup_max_fraction * self.steps))

    def accumulation_steps(self, world_size: int) -> int:
        """Micro-batches per process per optimizer step; a ConfigError if it is not whole."""
        per_step = self.micro_batch_size * world_size
        check(
            self.batch_size % per_step == 0,
            f"batch_size ({self.batch_size}) must be a multiple of micro_batch_size "
            f"({self.micro_batch_size}) x processes ({world_size})",
        )
        return self.batch_size // per_step


def load_train_config(path: str | None = None, overrides: list[str] | tuple = ()) -> TrainConfig:
    """TOML file (optional) then key=value overrides; a ConfigError names the bad key or value."""
    return load_config(TrainConfig, path, list(overrides))


__all__ = ["ConfigError", "ModelConfig", "TrainConfig", "load_train_config"]
