"""Suite-wide guard: the repository root is on sys.path while tests run (they import `tests.*`),
which would let code import a stage folder by its bare name (`train`, `eval`, ...) and pass here
while failing where the package is installed. Those names are refused, so such code fails here."""

import contextlib
import importlib.abc
import logging
import sys

import pytest

STAGE_FOLDERS = ("pipelines", "vocab", "train", "eval")


class _RefuseBareStageNames(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in STAGE_FOLDERS:
            raise ImportError(
                f"import mdeberta.{fullname}, not {fullname}: the stages install "
                "under the mdeberta package"
            )
        return None


sys.meta_path.insert(0, _RefuseBareStageNames())


@contextlib.contextmanager
def restored_logging():
    """For code that runs mdeberta.logs.setup (command.run does): the root logger's handlers
    and levels, and whether --verbose was given, restored afterwards."""
    from mdeberta import logs

    root, ours = logging.getLogger(), logging.getLogger(logs.OURS)
    saved = (list(root.handlers), root.level, ours.level, dict(logs._state))
    try:
        yield
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        ours.setLevel(saved[2])
        logs._state.clear()
        logs._state.update(saved[3])


@pytest.fixture
def logging_state():
    """restored_logging around a test."""
    with restored_logging():
        yield


@pytest.fixture(scope="session")
def toy_demo(tmp_path_factory):
    """`mdeberta demo` at the small setting of tests/toy.py, run once for the whole suite (the
    demo's tests and the documentation's commands share it): (directory, its log)."""
    from tests.toy import run_demo_cli

    out = tmp_path_factory.mktemp("demo")
    result = run_demo_cli(out)
    assert result.returncode == 0, result.stderr
    return out, result
