"""Training metrics: metrics.jsonl, progress (a bar on a terminal, lines in a log), TensorBoard
when installed, curves.png.

One JSON object per logged step (rank 0 writes), averaged over the steps since the previous line:

    step, tokens, lr, loss, mlm_loss, mlm_accuracy, rtd_loss, rtd_accuracy, replaced_fraction,
    eval_mlm_loss, eval_mlm_accuracy, eval_rtd_loss, eval_rtd_accuracy, eval_replaced_fraction
    (held-out scores, on the lines of eval steps only: TrainConfig.eval_data),
    grad_norm (joint) or grad_norm_generator / grad_norm_discriminator (decoupled),
    tokens_per_s, elapsed_s, and under fp16: skipped_steps (steps the loss scaler skipped
    since the previous line: a sum; their gradient norms are left out of the averages) and
    loss_scale (at the logged step)

Everything except tokens_per_s and elapsed_s is deterministic, so an interrupted and resumed run
writes the same lines as an uninterrupted one (the tests compare them).

A kill or a full disk during an append leaves a torn last line (no final newline): readers skip it
and resume drops it, each with a one-line notice. Damage anywhere else is an error naming the file
and line.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from typing import Any

from mdeberta import io
from mdeberta.progress import progress

METRICS = "metrics.jsonl"
CURVES = "curves.png"
TIMING_KEYS = ("tokens_per_s", "elapsed_s")
SUMMED = ("skipped_steps",)  # totals over the window, not averages
LATEST = ("loss_scale",)  # the value at the logged step


class MetricsLogger:
    """Accumulates per-step values, writes averaged lines every `interval` steps (rank 0 only)."""

    def __init__(
        self,
        run_dir: str,
        *,
        interval: int,
        total_steps: int,
        start_step: int = 0,
        enabled: bool = True,
        progress_bar: bool = True,
    ) -> None:
        self.path = io.join(run_dir, METRICS)
        self.interval = interval
        self.enabled = enabled
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)  # steps that reported each key
        self.window_tokens = 0
        self.recorded: dict[str, float] = {}  # values of the next line as they are (validation)
        self.window_start = time.perf_counter()
        self.run_start = time.perf_counter()
        self.bar = _progress_bar(total_steps, start_step) if enabled and progress_bar else None
        self.board = _tensorboard(run_dir) if enabled else None
        if enabled:
            truncate_metrics(self.path, start_step)

    def update(self, step: int, tokens: int, step_tokens: int, values: dict[str, float]) -> None:
        """Record one optimizer step's global values; log when the interval is reached."""
        for key, value in values.items():
            self.sums[key] = float(value) + (0.0 if key in LATEST else self.sums[key])
            self.counts[key] += 1
        self.window_tokens += step_tokens
        if self.bar is not None:
            self.bar.update(1)
        if step % self.interval == 0:
            self._write(step, tokens)

    def record(self, values: dict[str, float]) -> None:
        """Values measured once at the coming log step (held-out scores): written as they are."""
        self.recorded.update(values)

    def _write(self, step: int, tokens: int) -> None:
        now = time.perf_counter()
        line: dict[str, Any] = {"step": step, "tokens": tokens}
        kept = SUMMED + LATEST
        line.update(
            {k: v if k in kept else v / self.counts[k] for k, v in sorted(self.sums.items())}
        )
        line.update(sorted(self.recorded.items()))
        self.recorded.clear()
        line["tokens_per_s"] = self.window_tokens / max(now - self.window_start, 1e-9)
        line["elapsed_s"] = now - self.run_start
        self.sums.clear()
        self.counts.clear()
        self.window_tokens = 0
        self.window_start = now
        if not self.enabled:
            return
        with io.open_file(self.path, "a", compression=None) as f:
            f.write(json.dumps(line) + "\n")
        if self.bar is not None:
            self.bar.set_postfix(
                mlm=f"{line['mlm_loss']:.3f}",
                rtd=f"{line['rtd_loss']:.3f}",
                acc=f"{line['rtd_accuracy']:.3f}",
                tok_s=f"{line['tokens_per_s']:.0f}",
            )
        if self.board is not None:
            for key, value in line.items():
                if key != "step":
                    self.board.add_scalar(key, value, step)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.board is not None:
            self.board.close()


def _progress_bar(total: int, start: int):
    return progress(total=total, initial=start, desc="train", unit="step")


def _tensorboard(run_dir: str):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    if not io.is_local(run_dir):
        return None
    return SummaryWriter(io.join(run_dir, "tensorboard"))


def read_metrics(run_dir: str) -> list[dict[str, Any]]:
    """The rows of a run's metrics.jsonl (a torn last line is skipped, with a notice)."""
    path = io.join(run_dir, METRICS)
    if not io.exists(path):
        return []
    return [row for _, row in _parse_lines(path, "skipped")]


def truncate_metrics(path: str, step: int) -> None:
    """Drop lines logged after `step` (written after the checkpoint a resumed run starts from),
    and a torn last line."""
    if not io.exists(path):
        return
    text = io.read_text(path)
    kept = [line for line, row in _parse_lines(path, "dropped", text) if row["step"] <= step]
    repaired = "".join(line + "\n" for line in kept)
    if repaired != text:
        io.write_text(path, repaired)


def _parse_lines(path: str, verb: str, text: str | None = None) -> list[tuple[str, dict]]:
    """(line, row) of each complete line; a last line without its newline that does not parse
    is torn: `verb` (skipped, dropped) with a notice."""
    text = io.read_text(path) if text is None else text
    lines = text.split("\n")  # the piece after the last newline: "" or a torn line
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                raise ValueError("not a metrics row (an object with an integer step)")
        except ValueError as e:
            if number == len(lines):
                print(
                    f"mdeberta: {path}: {verb} a torn last line ({len(line)} characters, the "
                    "run was stopped while appending it)",
                    file=sys.stderr,
                )
                break
            raise ValueError(f"{path}:{number}: not a valid metrics line ({e})") from None
        rows.append((line, row))
    return rows


PANELS = (  # title, y-axis label, keys
    ("MLM loss (generator)", "cross-entropy (nats)", ("mlm_loss",)),
    ("RTD loss (discriminator)", "binary cross-entropy (nats)", ("rtd_loss",)),
    ("accuracy", "accuracy", ("rtd_accuracy", "mlm_accuracy")),
    ("learning rate", "learning rate", ("lr",)),
)
BASELINE = "RTD baseline: 1 - replaced fraction"
"""The accuracy of a discriminator that calls every token original: the RTD accuracy means
something only above it."""


def curves_figure(rows: list[dict[str, Any]], name: str):
    """The figure of curves.png: losses, accuracies beside the RTD baseline, learning rate."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = [r["step"] for r in rows]
    fig = Figure(figsize=(4 * len(PANELS), 3.6))
    FigureCanvasAgg(fig)  # the Agg canvas, without pyplot's global state
    axes = fig.subplots(1, len(PANELS))
    for ax, (title, ylabel, keys) in zip(axes, PANELS, strict=True):
        for key in keys:
            if key in rows[0]:
                ax.plot(steps, [r[key] for r in rows], label=key)
            held = [r for r in rows if f"eval_{key}" in r]  # validation: eval steps only
            if held:
                ax.plot([r["step"] for r in held], [r[f"eval_{key}"] for r in held], "--o",
                        markersize=3, label=f"{key} (held out)")  # fmt: skip
        if title == "accuracy" and "replaced_fraction" in rows[0]:
            trivial = [1 - r["replaced_fraction"] for r in rows]
            ax.plot(steps, trivial, linestyle="--", color="gray", label=BASELINE)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        if len(ax.get_lines()) > 1:
            ax.legend(fontsize=7)
    last = rows[-1]
    tokens = f", {last['tokens']:,} tokens" if "tokens" in last else ""
    fig.suptitle(f"{name}: {last['step']} steps{tokens}")
    fig.tight_layout()
    return fig


def plot_curves(run_dir: str, output: str | None = None) -> str:
    """Plot a run's metrics.jsonl to curves.png (curves_figure); return the file written."""
    rows = read_metrics(run_dir)
    if not rows:
        raise FileNotFoundError(f"{io.join(run_dir, METRICS)}: no metrics to plot")
    fig = curves_figure(rows, run_dir.rstrip("/") or run_dir)  # the run as the user named it
    output = output or io.join(run_dir, CURVES)
    with io.open_file(output, "wb", compression=None) as f:
        fig.savefig(f, format="png", dpi=100)
    return output
