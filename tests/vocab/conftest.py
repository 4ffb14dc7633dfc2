"""Fixtures of the vocabulary tests: a small clean corpus and one vocabulary built from it."""

from __future__ import annotations

import json

import pytest

from tests.vocab.corpus import (
    CORPUS_SIZES,
    MAX_SENTENCE_BYTES,
    RARE,
    VOCAB_SIZE,
    make_docs,
    write_clean_corpus,
)


@pytest.fixture(scope="session")
def corpus_docs() -> dict[str, list[dict]]:
    return {lang: make_docs(lang, n) for lang, n in CORPUS_SIZES.items()}


@pytest.fixture(scope="session")
def clean_corpus(tmp_path_factory, corpus_docs) -> str:
    docs = {k: list(v) for k, v in corpus_docs.items()}
    docs["en"][5]["text"] += f"\nA {RARE} rare letter."
    return write_clean_corpus(tmp_path_factory.mktemp("clean"), docs)


@pytest.fixture(scope="session")
def built_vocab(tmp_path_factory, clean_corpus):
    """One vocabulary built through the command line, shared by many tests: (dir, CLI output)."""
    from typer.testing import CliRunner

    from mdeberta.cli import app

    out = str(tmp_path_factory.mktemp("vocab"))
    args = ["build-vocab", "--corpus", clean_corpus, "--output", out]
    args += ["--vocab-size", str(VOCAB_SIZE), "--sentences", "1500", "--max-passes", "3"]
    args += ["--set", f"max_sentence_bytes={MAX_SENTENCE_BYTES}", "--set", "report_paragraphs=50"]
    args += ["--set", "num_threads=2", "--keep-sample", "--strict"]
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise RuntimeError(f"build-vocab failed:\n{result.output}") from result.exception
    return out, json.loads(result.stdout)
