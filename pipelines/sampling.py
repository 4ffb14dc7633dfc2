"""α-smoothed language sampling, shared by the vocabulary sample and the token shards.

XLM-R and mT5 sample language i with probability q_i ∝ p_i^α (α = 0.3), where p_i is its share of
the corpus. This module turns that into a per-language *rate* and applies it deterministically.

Pure functions (no Beam needed):

- ``sampling_probabilities(sizes, alpha)``: {lang: q_i}, with p_i = sizes[i] / sum(sizes).
- ``plan_sampling(sizes, alpha, target, max_passes, units=None)`` -> ``SamplingPlan``. The plan
  draws ``target`` units in total (``units`` gives each language's count of the unit that
  ``target`` counts, e.g. paragraphs or documents; default: ``sizes`` itself). Language i gets
  ``passes_i`` = expected copies of each of its elements: < 1 subsamples, > 1 repeats. A language
  that would need more than ``max_passes`` is ``capped`` there and its shortfall is spread over the
  others (water-filling), so the total still reaches ``target`` when the corpus allows.
  ``SamplingPlan.to_dict()`` / ``from_dict()`` round-trip it through manifests.
- ``copies(passes, seed, lang, key)`` -> int: how many times one element is drawn:
  floor(passes) plus one more with probability frac(passes), decided by a hash of
  (seed, lang, key). Same inputs, same answer, on any worker and any runner.
- ``sizes_from_stats(stats, ...)``: p_i from a clean corpus's stats.json
  (``mdeberta.clean_corpus.read_stats``).

Beam (``ApplySampling``): ``pcoll | ApplySampling(plan, seed=S)`` emits each element
``copies(...)`` times. Elements are the clean corpus's documents by default
(``{"id", "lang", "text"}``: key ``id``, language ``lang``). For other records pass ``key_fn`` and
``lang_fn`` (paragraphs: key ``f"{doc_id}:{index}"``). With ``with_copy_index=True`` it emits
``(copy_index, element)`` so repeated copies stay distinct (e.g. for a shuffle key). Counters
``sampling/seen/{lang}`` and ``sampling/drawn/{lang}`` are updated. Keys must be stable across
runs (the clean corpus ids are content hashes), so the same seed draws the same sample whatever
the number of workers. A job that keeps a small share of a large corpus can call ``copies`` inside
its reading step instead, so that undrawn records never become Beam elements; the vocabulary
sample (pipelines.sample_vocab) does that, per paragraph, with the same keys.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import apache_beam as beam

# helpers


def _check_sizes(sizes: Mapping[str, int | float]) -> None:
    if not sizes:
        raise ValueError("no languages to sample from (sizes is empty)")
    negative = {k: v for k, v in sizes.items() if v < 0}
    if negative:
        raise ValueError(f"sizes must be >= 0, got {negative}")
    if sum(sizes.values()) <= 0:
        raise ValueError(f"every language has size 0, nothing to sample: {sorted(sizes)}")


def sampling_probabilities(sizes: Mapping[str, int | float], alpha: float) -> dict[str, float]:
    """q_i ∝ p_i^α with p_i = sizes[i] / sum(sizes); a language of size 0 gets q = 0."""
    _check_sizes(sizes)
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    total = sum(sizes.values())
    smoothed = {k: (v / total) ** alpha if v > 0 else 0.0 for k, v in sizes.items()}
    norm = sum(smoothed.values())
    return {k: v / norm for k, v in sorted(smoothed.items())}


@dataclass(frozen=True)
class LanguagePlan:
    p: float
    """Share of the corpus (from sizes)."""
    q: float
    """α-smoothed sampling probability q ∝ p^α (before capping)."""
    passes: float
    """Expected copies of each element: < 1 subsamples, > 1 repeats the language's data."""
    capped: bool
    """True when passes was limited to max_passes (the language has too little text)."""
    expected_units: float
    """Expected number of drawn units (the unit `target` counts)."""


@dataclass(frozen=True)
class SamplingPlan:
    alpha: float
    target: float
    max_passes: float
    languages: dict[str, LanguagePlan]

    @property
    def expected_total(self) -> float:
        return sum(lp.expected_units for lp in self.languages.values())

    @property
    def shares(self) -> dict[str, float]:
        """Effective share of the drawn units per language (q after capping)."""
        total = self.expected_total or 1.0
        return {k: lp.expected_units / total for k, lp in self.languages.items()}

    def passes(self, lang: str) -> float:
        return self.languages[lang].passes if lang in self.languages else 0.0

    def to_dict(self) -> dict:
        return {
            "alpha": self.alpha,
            "target": self.target,
            "max_passes": self.max_passes,
            "expected_total": self.expected_total,
            "languages": {k: asdict(v) for k, v in self.languages.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> SamplingPlan:
        langs = {k: LanguagePlan(**v) for k, v in d["languages"].items()}
        return cls(d["alpha"], d["target"], d["max_passes"], langs)


def _water_fill(q: dict[str, float], size: dict, units: dict, target: float, cap: float) -> dict:
    """Passes per language so that sum(passes_i * units_i) == target with passes_i <= cap.

    Uncapped languages get passes_i = lam * q_i / size_i (their drawn share of *size* stays ∝ q_i);
    a language over the cap is pinned there and lam is solved again for the rest.
    """
    capped: set[str] = set()
    active = [k for k in q if q[k] > 0 and units[k] > 0]
    while True:
        rest = target - sum(cap * units[k] for k in capped)
        free = [k for k in active if k not in capped]
        slope = sum(q[k] * units[k] / size[k] for k in free)
        lam = rest / slope if slope > 0 else 0.0
        over = {k for k in free if lam * q[k] / size[k] > cap}
        if not over:
            break
        capped |= over
    return {k: (cap if k in capped else lam * q[k] / size[k]) if k in active else 0.0 for k in q}


def plan_sampling(
    sizes: Mapping[str, int | float],
    alpha: float,
    target: float | None,
    max_passes: float,
    units: Mapping[str, int | float] | None = None,
) -> SamplingPlan:
    """Plan to draw `target` units, language shares ∝ p^α, no language over `max_passes` passes.

    sizes: per language size that defines p (characters in the clean stats).
    target: total units to draw; None = as many units as the corpus holds.
    units: per language count of the unit `target` counts (default: sizes).
    When every language is capped, the plan draws less than `target` (see expected_total).
    """
    q = sampling_probabilities(sizes, alpha)
    units = dict(sizes if units is None else units)
    missing = set(sizes) - set(units)
    if missing:
        raise ValueError(f"units lacks languages {sorted(missing)}")
    if max_passes <= 0:
        raise ValueError(f"max_passes must be > 0, got {max_passes}")
    target = float(sum(units[k] for k in sizes) if target is None else target)
    if target <= 0:
        raise ValueError(f"target must be > 0, got {target}")
    total = sum(sizes.values())
    passes = _water_fill(q, dict(sizes), units, target, max_passes)
    langs = {
        k: LanguagePlan(
            p=sizes[k] / total,
            q=q[k],
            passes=passes[k],
            # relative tolerance: water-filling pins capped languages to exactly max_passes
            capped=passes[k] >= max_passes * (1 - 1e-12) and q[k] > 0,
            expected_units=passes[k] * units[k],
        )
        for k in sorted(sizes)
    }
    return SamplingPlan(alpha=alpha, target=target, max_passes=max_passes, languages=langs)


def _uniform(seed: int, lang: str, key: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, lang, key): the same on every worker."""
    digest = hashlib.blake2b(f"{seed}\x00{lang}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def copies(passes: float, seed: int, lang: str, key: str) -> int:
    """How many copies of one element to draw: floor(passes) + Bernoulli(frac(passes))."""
    whole = math.floor(passes)
    return whole + (1 if _uniform(seed, lang, key) < passes - whole else 0)


def sizes_from_stats(
    stats: Mapping, field: str = "chars_out", languages: list[str] | None = None
) -> dict[str, int]:
    """Per-language `field` from a clean corpus's stats.json ({"languages": {lang: {...}}})."""
    per_lang = stats.get("languages")
    if not isinstance(per_lang, Mapping):
        raise ValueError('stats.json has no "languages" table')
    wanted = sorted(per_lang) if languages is None else list(languages)
    absent = [k for k in wanted if k not in per_lang]
    if absent:
        raise ValueError(
            f"languages {absent} are not in the corpus stats (have {sorted(per_lang)})"
        )
    try:
        return {k: int(per_lang[k][field]) for k in wanted}
    except KeyError as err:
        raise ValueError(f"stats.json lacks field {err} for some language") from err


# Beam


def _doc_key(element) -> str:
    return element["id"]


def _doc_lang(element) -> str:
    return element["lang"]


class _SampleFn(beam.DoFn):
    def __init__(self, passes: dict[str, float], seed: int, key_fn, lang_fn, with_copy_index):
        self._passes = passes
        self._seed = seed
        self._key_fn = key_fn
        self._lang_fn = lang_fn
        self._with_copy_index = with_copy_index

    def process(self, element):
        lang = self._lang_fn(element)
        n = copies(self._passes.get(lang, 0.0), self._seed, lang, self._key_fn(element))
        beam.metrics.Metrics.counter("sampling", f"seen/{lang}").inc()
        if n:
            beam.metrics.Metrics.counter("sampling", f"drawn/{lang}").inc(n)
        for i in range(n):
            yield (i, element) if self._with_copy_index else element


class ApplySampling(beam.PTransform):
    """Draw each element `copies(plan.passes(lang), seed, lang, key)` times (module docstring)."""

    def __init__(
        self,
        plan: SamplingPlan,
        *,
        seed: int,
        key_fn: Callable[[object], str] = _doc_key,
        lang_fn: Callable[[object], str] = _doc_lang,
        with_copy_index: bool = False,
    ):
        super().__init__()
        self._passes = {k: lp.passes for k, lp in plan.languages.items()}
        self._seed = seed
        self._key_fn = key_fn
        self._lang_fn = lang_fn
        self._with_copy_index = with_copy_index

    def expand(self, pcoll):
        fn = _SampleFn(self._passes, self._seed, self._key_fn, self._lang_fn, self._with_copy_index)
        return pcoll | "Sample" >> beam.ParDo(fn)
