"""Whether a vocabulary fits a corpus: the languages it saw, its byte-fallback rate per language.
(End to end: the shard and build-vocab tests.)"""

from __future__ import annotations

import logging

import pytest

from mdeberta.vocab.coverage import (
    VocabCoverageError,
    check_coverage,
    coverage_problems,
    trained_languages,
)


def test_trained_languages_come_from_the_sample_the_manifest_records():
    manifest = {"sample": {"languages": {"de": {"paragraphs": 9}, "sw": {"paragraphs": 0}}}}
    assert trained_languages(manifest) == ["de"]  # sw was planned but never drawn
    assert trained_languages({"spm_sha256": "x"}) is None  # made elsewhere: nothing to say


def test_problems_name_the_language_and_the_numbers():
    metrics = {
        "de": {"paragraphs": 10, "byte_fallback_rate": 0.001},
        "ru": {"paragraphs": 10, "byte_fallback_rate": 0.8},
        "sw": {"paragraphs": 0, "byte_fallback_rate": None},
    }
    assert coverage_problems(metrics, ["de", "sw"], 0.05) == [
        "ru: not among the languages it was trained on (de, sw)",
        "ru: byte-fallback pieces are 80.0% of its ids on 10 paragraphs (max_byte_fallback 5.0%)",
    ]
    assert coverage_problems(metrics, None, 0.9) == []


def test_problems_warn_or_with_strict_refuse(caplog):
    with caplog.at_level(logging.WARNING):
        check_coverage(["ru: too many bytes"], "vocab", strict=False)
    assert "vocab/spm.model fits the corpus badly: ru: too many bytes" in caplog.text
    with pytest.raises(VocabCoverageError, match="ru: too many bytes .strict: refused"):
        check_coverage(["ru: too many bytes"], "vocab", strict=True)
    check_coverage([], "vocab", strict=True)
