"""metrics.jsonl: an append-only log whose torn last line (a kill or a full disk mid-append) is
dropped with a one-line notice; any other damage is an error naming the file and line."""

from __future__ import annotations

import json
import shutil

import pytest

from mdeberta.train.metrics import METRICS, plot_curves, read_metrics, truncate_metrics
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
