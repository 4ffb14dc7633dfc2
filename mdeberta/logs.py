"""What a command prints besides its results: one logging setup for every command.

    logs.setup()                 # command.run, before a command runs; --verbose: setup(True)
    with logs.held_errors("apache_beam"), logs.filtered_stderr(is_worker_log_line): ...

- Our own loggers (`mdeberta.*`) print their INFO lines as plain messages; other libraries print
  WARNING and above, named: `apache_beam.options.pipeline_options: warning: ...`. With --verbose
  every library's INFO lines show too.
- Known-harmless warnings (HARMLESS) are dropped: messages that appear on every run and that a user
  can do nothing about, such as Beam's "apitools not found" on every import.
- A record a library's own handler has already printed (huggingface_hub and datasets attach one
  to their loggers and let records propagate too) is not printed a second time.
- `held_errors`: a library's ERROR records during a block are held back and printed only if the
  block succeeds. A failed Beam step logs its traceback, then raises the same error, which the
  command prints as one line (command.run); a logged error the block survived is still shown.
- `filtered_stderr`: what child processes (Beam's SDK workers) write to the standard error is
  filtered line by line; what this process's Python code prints is untouched.

Light at import (the standard library only), like every module `mdeberta --help` loads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator

OURS = "mdeberta"
HARMLESS = (
    # apache_beam/io/gcp/internal/clients/bigquery: logged at every import of Beam without the
    # gcp extra, whose BigQuery clients no mdeberta job uses
    re.compile(r"apitools not found, and bigquery client libraries are not available"),
    # every local SDK worker: it has no staging directory, and no job registers schema types
    re.compile(r"No semi_persistent_directory found"),
    # Beam checking a gs:// option without the gcp extra: the run then fails with one line
    # saying which extra to install (command.run)
    re.compile(r"because GCP dependencies are not installed"),
)
_state = {"verbose": False}


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever sys.stderr is when a record is emitted (as logging's own
    last-resort handler does), so test runners and filtered_stderr see the records."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


class _Format(logging.Formatter):
    """Our messages as written; another library's prefixed with its logger and level."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.name == OURS or record.name.startswith(OURS + "."):
            return message
        return f"{record.name}: {record.levelname.lower()}: {message}"


def _harmless(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return any(pattern.search(message) for pattern in HARMLESS)


def _printed_already(record: logging.LogRecord) -> bool:
    """Whether a handler below the root (a library's own) has printed the record already."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None and logger is not logging.root:
        if logger.handlers:
            return True
        if not logger.propagate:
            return False
        logger = logger.parent  # type: ignore[assignment]
    return False


def setup(verbose: bool = False) -> None:
    """Configure the root logger for a command (idempotent; a second call may raise verbosity)."""
    _state["verbose"] = _state["verbose"] or verbose
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _Stderr)), None)
    if handler is None:
        handler = _Stderr()
        handler.setFormatter(_Format())
        handler.addFilter(lambda record: not (_harmless(record) or _printed_already(record)))
        root.addHandler(handler)
    # a library that logs before any handler exists would install logging.basicConfig's
    # (Beam does, at import): ours is there first, so that never happens
    root.setLevel(logging.INFO if _state["verbose"] else logging.WARNING)
    logging.getLogger(OURS).setLevel(logging.INFO)


def verbose() -> bool:
    """Whether --verbose was given: libraries' INFO lines and Beam workers' logs shown as is."""
    return _state["verbose"]


@contextlib.contextmanager
def held_errors(prefix: str) -> Iterator[None]:
    """Hold back ERROR records of the loggers under `prefix` during the block; print them after
    it if it succeeds, drop them if it raises (the exception reports the failure)."""
    held: dict[int, logging.LogRecord] = {}  # each handler sees the record: keep it once

    def hold(record: logging.LogRecord) -> bool:
        mine = record.name == prefix or record.name.startswith(prefix + ".")
        if mine and record.levelno >= logging.ERROR:
            held[id(record)] = record
            return False
        return True

    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(hold)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(hold)
    for record in held.values():  # reached only when the block succeeded
        for handler in handlers:
            handler.handle(record)


@contextlib.contextmanager
def filtered_stderr(drop: Callable[[str], bool]) -> Iterator[None]:
    """Filter what other writers (child processes, C libraries) send to file descriptor 2 during
    the block: each line for which `drop(line)` is true is left out (a dropped line's following
    lines are offered to `drop` too, so it can skip a record's traceback). Python's sys.stderr of
    this process writes past the filter, unchanged."""
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    original = sys.stderr
    direct = _writes_to_fd2(original)
    if direct:  # this process's own writes bypass the pipe
        sys.stderr = open(  # noqa: SIM115 - closed at the end of the block
            saved, "w", buffering=1, encoding=original.encoding, errors="backslashreplace",
            closefd=False,
        )  # fmt: skip
    pump = threading.Thread(target=_pump, args=(read_end, saved, drop), daemon=True)
    pump.start()
    try:
        yield
    finally:
        if direct:
            sys.stderr.close()
            sys.stderr = original
        os.dup2(saved, 2)  # closes this process's write end: the pump sees EOF once the
        pump.join(timeout=10)  # children holding the pipe have exited
        if not pump.is_alive():
            os.close(saved)


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a test runner's capture: not fd 2
        return False


def _pump(read_end: int, out: int, drop: Callable[[str], bool]) -> None:
    """Copy lines from the pipe to `out`, leaving out those `drop` rejects."""
    pending = b""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(1 << 16):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = [line for line in lines if not drop(line.decode("utf-8", "replace"))]
            if kept:
                os.write(out, b"".join(line + b"\n" for line in kept))
    if pending and not drop(pending.decode("utf-8", "replace")):
        os.write(out, pending)
