"""xnli.md and xnli.png from a results dict."""

from __future__ import annotations

import pytest

from mdeberta.eval.report import (
    CARD_ORDER,
    PUBLISHED,
    markdown,
    mean,
    ordered,
    plot_png,
    table_rows,
    xnli_figure,
)


def results(accuracy: dict[str, float]) -> dict:
    source = {"source": "xnli-tsv:xnli.test.tsv", "skipped": {"wrong_column_count": 2}}
    return {
        "model": {
            "path": "runs/x/hf/discriminator",
            "name": "discriminator",
            "backend": "mdeberta",
        },
        "data": {"train": None, "dev": None, "test": source},
        "eval_only": True,
        "accuracy": accuracy,
    }


def test_published_rows_match_the_card_averages():
    assert mean(PUBLISHED["mDeBERTa-v3-base"].values()) == pytest.approx(79.84, abs=0.005)
    assert mean(PUBLISHED["XLM-R base"].values()) == pytest.approx(76.21, abs=0.005)
    assert set(PUBLISHED["XLM-R base"]) == set(CARD_ORDER)


def test_subset_table_averages_over_the_languages_evaluated():
    table = markdown(results({"sw": 0.5, "en": 0.75}))
    assert "| model | avg | en | sw |" in table  # the card's order, not the input's
    assert "| ours: discriminator | 62.5 | 75.0 | 50.0 |" in table
    assert f"| mDeBERTa-v3-base (published) | {(88.2 + 73.9) / 2:.1f} | 88.2 | 73.9 |" in table
    assert "over the 2 languages evaluated" in table
    assert "wrong_column_count" in table  # malformed rows are reported


def test_languages_outside_the_card_get_empty_published_cells():
    rows = table_rows(results({"ja": 0.6, "en": 0.8}))
    assert ordered(["ja", "zh", "en"]) == ["en", "zh", "ja"]
    assert rows[1][2] == {"en": 88.2, "ja": None} and rows[1][1] == 88.2
    assert "| – |" in markdown(results({"ja": 0.6, "en": 0.8}))


def test_plot_is_a_png():
    assert plot_png(results({"en": 0.8, "de": 0.7})).startswith(b"\x89PNG\r\n\x1a\n")


def test_the_plot_draws_the_chance_line_at_a_third():
    (ax,) = xnli_figure(results({"en": 0.34, "de": 0.33})).axes
    chance = [line for line in ax.get_lines() if line.get_label() == "chance (33.3%)"]
    assert len(chance) == 1 and list(chance[0].get_ydata()) == [pytest.approx(100 / 3)] * 2
    assert ax.get_ylabel() == "accuracy (%)"
