"""The tiny tokenizer and exported encoder of tests/eval, for the study's diagnostics."""

from tests.eval.conftest import our_model_dir, tokenizer_dir  # noqa: F401 (fixtures shared)
