"""Beam runs through the command line: no Beam chatter, and a worker's error as one line."""

import shutil
import subprocess
import sys

import pytest

from mdeberta import resources_path
from mdeberta.pipelines.quiet import WorkerLogLines

# what a local SDK worker writes to the standard error it shares with us (Beam 2.78): its log
# records when the apitools warning gave it a handler, and always a failed step's bare traceback
WORKER_STDERR = """\
Traceback (most recent call last):
  File "/x/pipelines/read.py", line 231, in _text_documents
mdeberta.pipelines.read.BadInputFileError: /tmp/fr.txt.xz: truncated or corrupt

WARNING:root:apitools not found, and bigquery client libraries are not available despite the import not raising an ImportError.
INFO:__main__:Logging handler created.
ERROR:apache_beam.runners.worker.sdk_worker:Error processing instruction bundle_1. Original traceback is
Traceback (most recent call last):
  File "/x/pipelines/read.py", line 231, in _text_documents
    raise BadInputFileError(
mdeberta.pipelines.read.BadInputFileError: /tmp/fr.txt.xz: truncated or corrupt

During handling of the above exception, another exception occurred:

_lzma.LZMAError: Input format not supported by decoder
Fatal Python error: Segmentation fault
INFO:__main__:Python sdk harness exiting.
"""  # noqa: E501


def test_worker_log_records_and_their_tracebacks_are_dropped_other_lines_kept():
    drop = WorkerLogLines()
    kept = [line for line in WORKER_STDERR.splitlines() if not drop(line)]
    assert kept == ["Fatal Python error: Segmentation fault"]


def mdeberta(*args):
    cmd = [sys.executable, "-m", "mdeberta", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    """Two files of the packaged sample corpus."""
    folder = tmp_path_factory.mktemp("texts")
    for lang in ("en", "de"):
        shutil.copy(resources_path("sample", f"{lang}.txt.xz"), folder / f"{lang}.txt.xz")
    return folder


def test_verbose_shows_the_worker_logging_a_quiet_run_leaves_out(texts, tmp_path):
    """The quiet default is checked on the demo's log (tests/mdeberta/test_demo.py)."""
    args = ("clean", texts / "en.txt.xz", "--workers", "2", "--output", tmp_path / "a")
    verbose = mdeberta(*args, "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert "Worker: severity: INFO" in verbose.stderr  # asked for: the workers' INFO lines too


@pytest.mark.parametrize(
    ("damage", "workers"),
    [("truncated", 1), ("empty", 1), ("not-xz", 2)],
    ids=["truncated-in-process", "empty-in-process", "not-xz-in-a-worker-process"],
)
def test_a_bad_input_file_read_by_a_worker_is_one_line_naming_it(texts, tmp_path, damage, workers):
    good = (texts / "en.txt.xz").read_bytes()
    data = {"truncated": good[: len(good) // 2], "empty": b"", "not-xz": b"plain text, not xz"}
    bad = tmp_path / "fr.txt.xz"
    bad.write_bytes(data[damage])
    out = mdeberta("clean", bad, "--output", tmp_path / "out", "--workers", workers)
    assert out.returncode == 1
    assert out.stderr.startswith(f"mdeberta: error: {bad}: truncated or corrupt"), out.stderr
    assert len(out.stderr.splitlines()) == 1, out.stderr  # no Beam traceback, no worker logs
    assert not (tmp_path / "out").exists()  # nothing left that looks like progress
