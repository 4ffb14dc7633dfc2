import logging
import subprocess
import sys

import pytest

from mdeberta import logs


@pytest.fixture
def configured(logging_state):
    """logs.setup() on this process's root logger (undone afterwards)."""
    logs._state["verbose"] = False
    logs.setup()


def test_ours_as_written_others_named_and_harmless_ones_dropped(configured, capsys):
    logging.getLogger("mdeberta.vocab.build").info("training SentencePiece")
    logging.getLogger("apache_beam.options").warning("Invalid GCS bucket")
    logging.getLogger("apache_beam.options").info("an INFO line of Beam")
    logging.warning(  # Beam, at every import without the gcp extra
        "apitools not found, and bigquery client libraries are not available despite the import "
        "not raising an ImportError."
    )
    assert capsys.readouterr().err.splitlines() == [
        "training SentencePiece",
        "apache_beam.options: warning: Invalid GCS bucket",
    ]


def test_verbose_shows_the_libraries_info_lines(configured, capsys):
    logs.setup(verbose=True)
    logging.getLogger("apache_beam.runners").info("Created Worker handler")
    assert capsys.readouterr().err == "apache_beam.runners: info: Created Worker handler\n"


def test_a_record_a_library_printed_itself_is_not_printed_again(configured, capsys):
    library = logging.getLogger("huggingface_hub")  # attaches its own handler, still propagates
    own = logging.StreamHandler(sys.stderr)
    library.addHandler(own)
    try:
        logging.getLogger("huggingface_hub.utils").warning("Retrying in 1s [Retry 1/5].")
    finally:
        library.removeHandler(own)
    assert capsys.readouterr().err == "Retrying in 1s [Retry 1/5].\n"  # once, not twice


def test_held_errors_are_shown_after_success_and_dropped_on_failure(configured, capsys):
    beam = logging.getLogger("apache_beam.runners.common")
    with logs.held_errors("apache_beam"):
        beam.error("an error the run survived")
        logging.getLogger("mdeberta").error("ours: never held")
        assert capsys.readouterr().err == "ours: never held\n"
    survived = "apache_beam.runners.common: error: an error the run survived\n"
    assert capsys.readouterr().err == survived
    with pytest.raises(ValueError), logs.held_errors("apache_beam"):
        beam.error("Traceback ... BadInputFileError: x.txt.xz: truncated")
        raise ValueError("x.txt.xz: truncated")
    assert capsys.readouterr().err == ""


CHILD = """
import sys
print("INFO:__main__:Logging handler created.", file=sys.stderr)
print("Traceback (most recent call last):", file=sys.stderr)
print("  File 'x.py', line 1", file=sys.stderr)
print("a child's own line", file=sys.stderr)
"""


def test_filtered_stderr_filters_child_processes_not_our_own_prints(capfd):
    drop = lambda line: line.startswith(("INFO:", "Traceback", "  "))  # noqa: E731
    with logs.filtered_stderr(drop):
        subprocess.run([sys.executable, "-c", CHILD], check=True)
        print("ours, as is: INFO:x", file=sys.stderr)
    out = capfd.readouterr().err
    assert "a child's own line\n" in out and "ours, as is: INFO:x\n" in out
    assert "Logging handler" not in out and "Traceback" not in out
    print("after the block", file=sys.stderr)  # file descriptor 2 is restored
    assert capfd.readouterr().err == "after the block\n"
