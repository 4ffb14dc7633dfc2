"""metrics.jsonl: an append-only log whose torn last line (a kill or a full disk mid-append) is
dropped with a one-line notice; any other damage is an error naming the file and line."""

from __future__ import annotations

import json
import shutil

import pytest

from mdeberta.train.metrics import (
    BASELINE,
    METRICS,
    curves_figure,
    plot_curves,
    read_metrics,
    truncate_metrics,
)
from tests.train.helpers import REFERENCE, deterministic, train_here

TORN = '{"step": 26, "tokens": 13312, "loss": 3.2'


def write_rows(path, rows, tail=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)


def test_a_torn_last_line_is_skipped_by_readers_with_a_notice(tmp_path, capsys):
    rows = [
        {"step": 2, "mlm_loss": 5.0, "rtd_loss": 0.6, "rtd_accuracy": 0.8, "lr": 1e-3},
        {"step": 4, "mlm_loss": 4.0, "rtd_loss": 0.5, "rtd_accuracy": 0.9, "lr": 2e-3},
    ]
    write_rows(tmp_path / METRICS, rows, TORN)
    assert read_metrics(str(tmp_path)) == rows
    plot_curves(str(tmp_path))  # `mdeberta plot` works on it
    err = capsys.readouterr().err
    assert str(tmp_path / METRICS) in err and "torn" in err
    assert (tmp_path / METRICS).read_text().endswith(TORN)  # readers never write


def test_resume_repairs_a_torn_last_line(tmp_path, capsys):
    rows = [{"step": s, "loss": 1.0} for s in (2, 4, 6)]
    write_rows(tmp_path / METRICS, rows, TORN)
    truncate_metrics(str(tmp_path / METRICS), 4)
    assert (tmp_path / METRICS).read_text() == "".join(json.dumps(r) + "\n" for r in rows[:2])
    assert "torn" in capsys.readouterr().err


def test_a_damaged_line_before_the_last_is_an_error_naming_file_and_line(tmp_path):
    write_rows(tmp_path / METRICS, [{"step": 2}], '{"step": 4, "lo\n{"step": 6}\n')
    for read in (
        lambda: read_metrics(str(tmp_path)),
        lambda: truncate_metrics(str(tmp_path / METRICS), 6),
    ):
        with pytest.raises(ValueError, match=rf"{METRICS}:2: "):
            read()


def test_a_run_with_a_torn_metrics_line_resumes(reference_run, shards, tmp_path):
    """Defect: a torn last line made resume and `plot` fail with a JSON error naming no file."""
    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    with open(run / METRICS, "a") as f:
        f.write(TORN)  # the kill came while appending step 26, after checkpoint 24
    rows = train_here(shards, str(run), *REFERENCE, "steps=28", "export_at_end=false")
    assert [r["step"] for r in rows] == list(range(2, 29, 2))
    assert deterministic(rows[:12]) == deterministic(read_metrics(reference_run))


def test_curves_have_axis_labels_a_title_and_the_rtd_baseline(tmp_path):
    rows = [
        {"step": s, "tokens": 512 * s, "mlm_loss": 5.0, "rtd_loss": 0.5, "rtd_accuracy": 0.9,
         "mlm_accuracy": 0.1, "replaced_fraction": 0.12, "lr": 1e-3}
        for s in (10, 20)
    ]  # fmt: skip
    fig = curves_figure(rows, "xsmall")
    assert fig.get_suptitle() == "xsmall: 20 steps, 10,240 tokens"
    assert all(ax.get_ylabel() for ax in fig.axes)
    accuracy = next(ax for ax in fig.axes if ax.get_title() == "accuracy")
    lines = {line.get_label(): list(line.get_ydata()) for line in accuracy.get_lines()}
    assert "replaced_fraction" not in lines  # a fraction of tokens is no accuracy
    assert lines[BASELINE] == [pytest.approx(0.88)] * 2  # what "all original" would score
    assert set(lines) == {"rtd_accuracy", "mlm_accuracy", BASELINE}
    write_rows(tmp_path / METRICS, rows)
    assert plot_curves(str(tmp_path)) == f"{tmp_path}/curves.png"
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
