"""A local Beam run without Beam's chatter: its workers' log lines and its failure tracebacks.

A local run with several workers starts SDK worker processes that share our standard error. Each
imports Beam, whose "apitools not found" warning (without the gcp extra) makes
`logging.basicConfig` give the worker a handler on stderr, which then prints every INFO line of
the worker's life (~20 lines a worker, in `LEVEL:logger:message` form); a failed step's traceback
is printed there too, bare, before it is logged. Every record a worker logs after its start also
reaches this process through Beam's log relay (logger
apache_beam.runners.portability.local_job_service), where the logging setup (mdeberta/logs.py)
applies the usual levels; so the workers' own copies are dropped here, tracebacks included. A
failed step's ERROR records are held: the error the run raises says the same in one line
(command.run). With --verbose nothing is filtered.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator

from mdeberta import logs

REMOTE_PROGRESS = "apache_beam.runners.dataflow"  # the Dataflow runner's loggers
# logging.BASIC_FORMAT, what basicConfig writes: "INFO:apache_beam.runners.worker...:message",
# or a bare traceback, which a worker prints before logging it when an instruction fails
RECORD = re.compile(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL):[\w.]+:|Traceback \(most recent call")
# the lines of a traceback that follows a record: frames (indented), their headers, the
# exception line (`module.Error: message`) and blank lines
TRACEBACK = re.compile(
    r"(\s|$|Traceback \(most recent call last\):|The above exception was|During handling of "
    r"the above exception|[\w.]+(: |$))"
)


class WorkerLogLines:
    """A filtered_stderr predicate: true for the lines of a worker's log records."""

    def __init__(self) -> None:
        self.in_record = False

    def __call__(self, line: str) -> bool:
        if RECORD.match(line):
            self.in_record = True
        elif not (self.in_record and TRACEBACK.match(line)):
            self.in_record = False
        return self.in_record


@contextlib.contextmanager
def quiet_run(local: bool) -> Iterator[None]:
    """Around a Beam run: a local one's worker log lines filtered and Beam's ERROR records held
    (logs.py). A remote runner's INFO lines are the job's progress (Dataflow: the job id, its
    console URL, state changes): they are shown."""
    if logs.verbose():
        yield
    elif not local:
        remote = logging.getLogger(REMOTE_PROGRESS)
        level = remote.level
        remote.setLevel(logging.INFO)
        try:
            yield
        finally:
            remote.setLevel(level)
    else:
        with logs.held_errors("apache_beam"), logs.filtered_stderr(WorkerLogLines()):
            yield
