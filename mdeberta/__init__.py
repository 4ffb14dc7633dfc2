"""mdeberta: an open mDeBERTa-v3 pretraining stack.

The core every stage imports: configs, the language registry, the model, the shard format,
Hugging Face import/export, fsspec helpers and the command line. Heavy libraries (torch, Beam,
transformers) are imported by the modules that need them, never here, so `mdeberta --help` is fast.
"""

from importlib import resources
from pathlib import Path

__version__ = "0.1.0"


def resources_path(*parts: str) -> Path:
    """Path of a file shipped in mdeberta/resources/ (the sample corpus, the XNLI fixture, ...)."""
    return Path(str(resources.files("mdeberta").joinpath("resources", *parts)))
