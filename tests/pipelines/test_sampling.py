import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from mdeberta.pipelines.sampling import (
    ApplySampling,
    SamplingPlan,
    copies,
    plan_sampling,
    sampling_probabilities,
    sizes_from_stats,
)

SIZES = {"en": 1_000_000, "de": 100_000, "sw": 1_000}


def test_probabilities_follow_p_to_the_alpha():
    q = sampling_probabilities(SIZES, 0.3)
    assert sum(q.values()) == pytest.approx(1.0)
    # q_en / q_sw = (p_en / p_sw)^0.3 = 1000^0.3
    assert q["en"] / q["sw"] == pytest.approx(1000**0.3)
    assert sampling_probabilities(SIZES, 1.0)["en"] == pytest.approx(1_000_000 / 1_101_000)


def test_alpha_flattens_towards_uniform():
    q_small = sampling_probabilities(SIZES, 0.01)
    assert max(q_small.values()) - min(q_small.values()) < 0.05


def test_zero_sized_language_gets_nothing():
    q = sampling_probabilities({"en": 10, "xx": 0}, 0.3)
    assert q == {"en": 1.0, "xx": 0.0}
    plan = plan_sampling({"en": 10, "xx": 0}, 0.3, target=5, max_passes=2)
    assert plan.languages["xx"].passes == 0 and not plan.languages["xx"].capped


@pytest.mark.parametrize(
    "sizes, alpha, message",
    [
        ({}, 0.3, "empty"),
        ({"en": 0}, 0.3, "size 0"),
        ({"en": -1}, 0.3, ">= 0"),
        (SIZES, 0, "alpha"),
    ],
)
def test_bad_inputs_are_clear_errors(sizes, alpha, message):
    with pytest.raises(ValueError, match=message):
        sampling_probabilities(sizes, alpha)


def test_plan_without_caps_draws_target_in_q_proportions():
    plan = plan_sampling(SIZES, 0.3, target=10_000, max_passes=1000)
    assert plan.expected_total == pytest.approx(10_000)
    assert not any(lp.capped for lp in plan.languages.values())
    for lang, share in plan.shares.items():
        assert share == pytest.approx(plan.languages[lang].q)


def test_small_language_is_capped_and_shortfall_goes_to_the_others():
    plan = plan_sampling(SIZES, 0.3, target=500_000, max_passes=5)
    sw = plan.languages["sw"]
    assert sw.capped and sw.passes == 5 and sw.expected_units == 5_000
    assert plan.expected_total == pytest.approx(500_000)
    # the uncapped languages keep their relative q proportions
    en, de = plan.languages["en"], plan.languages["de"]
    assert en.expected_units / de.expected_units == pytest.approx(en.q / de.q)


def test_everything_capped_draws_less_than_target():
    plan = plan_sampling(SIZES, 0.3, target=10**9, max_passes=2)
    assert all(lp.capped for lp in plan.languages.values())
    assert plan.expected_total == pytest.approx(2 * sum(SIZES.values()))


def test_target_in_other_units():
    # p from characters, target counted in paragraphs (100 chars each for en, 10 for sw)
    paragraphs = {"en": 10_000, "de": 1_000, "sw": 100}
    plan = plan_sampling(SIZES, 0.3, target=1_000, max_passes=100, units=paragraphs)
    assert plan.expected_total == pytest.approx(1_000)
    drawn_chars = {k: lp.passes * SIZES[k] for k, lp in plan.languages.items()}
    total = sum(drawn_chars.values())
    assert drawn_chars["en"] / total == pytest.approx(plan.languages["en"].q)


def test_plan_round_trips_through_dict():
    plan = plan_sampling(SIZES, 0.3, target=500_000, max_passes=5)
    assert SamplingPlan.from_dict(plan.to_dict()) == plan


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.integers(1, 10**6), min_size=1),
    st.floats(0.05, 1.0),
    st.floats(1, 10**6),
    st.floats(0.5, 50),
)
def test_plan_invariants(sizes, alpha, target, max_passes):
    plan = plan_sampling(sizes, alpha, target, max_passes)
    feasible = max_passes * sum(sizes.values())
    assert plan.expected_total == pytest.approx(min(target, feasible), rel=1e-9)
    for lp in plan.languages.values():
        assert 0 < lp.passes <= max_passes * (1 + 1e-12)


def test_copies_are_deterministic_and_have_the_right_mean():
    draws = [copies(2.25, 7, "en", str(i)) for i in range(20_000)]
    assert set(draws) == {2, 3}
    assert sum(draws) / len(draws) == pytest.approx(2.25, abs=0.02)
    assert draws == [copies(2.25, 7, "en", str(i)) for i in range(20_000)]
    assert draws != [copies(2.25, 8, "en", str(i)) for i in range(20_000)]


def test_sizes_from_stats():
    stats = {"languages": {"en": {"chars_out": 10}, "de": {"chars_out": 3}}}
    assert sizes_from_stats(stats) == {"de": 3, "en": 10}
    with pytest.raises(ValueError, match="not in the corpus stats"):
        sizes_from_stats(stats, languages=["fr"])


def _expected(docs, plan, seed):
    return [
        d for d in docs for _ in range(copies(plan.passes(d["lang"]), seed, d["lang"], d["id"]))
    ]


def test_beam_transform_matches_the_pure_function():
    docs = [{"id": f"{lang}{i}", "lang": lang, "text": "x"} for lang in SIZES for i in range(50)]
    plan = plan_sampling(SIZES, 0.3, target=150, max_passes=3)
    with beam.Pipeline("FnApiRunner") as p:
        out = p | beam.Create(docs) | ApplySampling(plan, seed=3)
        assert_that(out, equal_to(_expected(docs, plan, 3)))


def test_beam_transform_on_paragraphs_with_copy_index():
    paras = [("d1", 0, "de", "a"), ("d1", 1, "de", "b"), ("d2", 0, "de", "c")]
    plan = plan_sampling({"de": 3}, 0.3, target=6, max_passes=2)  # exactly 2 passes
    with beam.Pipeline("FnApiRunner") as p:
        out = (
            p
            | beam.Create(paras)
            | ApplySampling(
                plan,
                seed=0,
                key_fn=lambda r: f"{r[0]}:{r[1]}",
                lang_fn=lambda r: r[2],
                with_copy_index=True,
            )
        )
        assert_that(out, equal_to([(i, r) for r in paras for i in range(2)]))
