import pytest

from mdeberta.pipelines.sample_vocab import vocab_sampling_plan


def test_plan_counts_paragraphs_and_weights_characters():
    stats = {
        "languages": {
            "en": {"chars_out": 1_000_000, "paragraphs_out": 10_000},
            "sw": {"chars_out": 10_000, "paragraphs_out": 100},
            "xx": {"chars_out": 0, "paragraphs_out": 0},
        }
    }
    plan = vocab_sampling_plan(stats, alpha=0.3, sentences=1_000, max_passes=5)
    assert set(plan.languages) == {"en", "sw"}
    assert plan.expected_total == pytest.approx(1_000)
    with pytest.raises(ValueError, match="no text"):
        vocab_sampling_plan(
            {"languages": {"en": {"chars_out": 0, "paragraphs_out": 0}}},
            alpha=0.3,
            sentences=10,
            max_passes=1,
        )
