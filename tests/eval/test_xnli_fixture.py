"""The packaged XNLI-format fixture (mdeberta/resources/xnli/) keeps the real file layouts.

`mdeberta eval xnli` and the demo read these files exactly as they read MultiNLI 1.0 and XNLI 1.0,
so a drift here (a column order, a label string, a quoting mode) would hide loader bugs.
"""

import csv
import io
import json
import unicodedata
from collections import Counter, defaultdict

import pytest

from mdeberta import resources_path

XNLI_DIR = resources_path("xnli")
XNLI_LANGUAGES = (
    "ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh",
)  # fmt: skip
LABELS = ("entailment", "neutral", "contradiction")
# The header of XNLI-1.0/xnli.{dev,test}.tsv, in its order (XTREME reads columns 0, 1, 6, 7).
XNLI_HEADER = [
    "language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "promptID", "pairID",
    "genre", "label1", "label2", "label3", "label4", "label5", "sentence1_tokenized",
    "sentence2_tokenized", "match",
]  # fmt: skip
MNLI_KEYS = {
    "annotator_labels", "genre", "gold_label", "pairID", "promptID", "sentence1",
    "sentence1_binary_parse", "sentence1_parse", "sentence2", "sentence2_binary_parse",
    "sentence2_parse",
}  # fmt: skip
# The Unicode script every sentence of a language must use (first word of the character name).
SCRIPT = {"ar": "ARABIC", "ur": "ARABIC", "bg": "CYRILLIC", "ru": "CYRILLIC", "el": "GREEK",
          "hi": "DEVANAGARI", "th": "THAI", "zh": "CJK"}  # fmt: skip
PAIRS_PER_LANGUAGE = 21


def read_tsv(name: str) -> list[list[str]]:
    # Real XNLI files must be read with QUOTE_NONE: sentences contain unbalanced quote marks.
    with open(XNLI_DIR / name, encoding="utf-8", newline="") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def read_rows(name: str) -> list[dict[str, str]]:
    header, *rows = read_tsv(name)
    return [dict(zip(header, row, strict=True)) for row in rows]


def read_mnli() -> list[dict]:
    with open(XNLI_DIR / "multinli.train.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def majority(labels: list[str]) -> str:
    label, count = Counter(labels).most_common(1)[0]
    return label if count >= 3 else "-"


def letters(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("name", ["xnli.dev.tsv", "xnli.test.tsv"])
def test_xnli_layout_and_counts(name):
    header, *rows = read_tsv(name)
    assert header == XNLI_HEADER
    assert all(len(row) == len(XNLI_HEADER) for row in rows)
    rows = [dict(zip(header, row, strict=True)) for row in rows]
    assert len(rows) == PAIRS_PER_LANGUAGE * len(XNLI_LANGUAGES)
    assert sorted({r["language"] for r in rows}) == list(XNLI_LANGUAGES)
    per_language = Counter((r["language"], r["gold_label"]) for r in rows)
    assert per_language == {(lang, label): 7 for lang in XNLI_LANGUAGES for label in LABELS}
    for r in rows:
        annotators = [r[f"label{i}"] for i in range(1, 6)]
        assert set(annotators) <= set(LABELS)
        assert majority(annotators) == r["gold_label"]
        assert r["sentence1"] and r["sentence2"] and r["match"] == "True"
        assert r["pairID"].isdigit() and r["promptID"].isdigit()
        # The tokenized columns hold the same characters as the sentences, split into words.
        assert letters(r["sentence1_tokenized"]) == letters(r["sentence1"])
        assert letters(r["sentence2_tokenized"]) == letters(r["sentence2"])


@pytest.mark.parametrize("name", ["xnli.dev.tsv", "xnli.test.tsv"])
def test_xnli_same_pairs_translated_in_every_language(name):
    by_language = defaultdict(dict)
    for r in read_rows(name):
        by_language[r["language"]][r["pairID"]] = r
    english = by_language["en"]
    assert len(english) == PAIRS_PER_LANGUAGE
    hypotheses_per_premise = Counter(r["promptID"] for r in english.values())
    assert set(hypotheses_per_premise.values()) == {3}
    for lang in XNLI_LANGUAGES:
        pairs = by_language[lang]
        assert pairs.keys() == english.keys(), lang
        for pair_id, r in pairs.items():
            en = english[pair_id]
            assert (r["gold_label"], r["promptID"], r["genre"]) == (
                en["gold_label"],
                en["promptID"],
                en["genre"],
            )
            if lang != "en":
                assert r["sentence1"] != en["sentence1"] and r["sentence2"] != en["sentence2"]
            if lang in SCRIPT:
                text = letters(r["sentence1"] + r["sentence2"])
                alphabetic = [c for c in text if c.isalpha()]
                assert all(unicodedata.name(c).startswith(SCRIPT[lang]) for c in alphabetic), (
                    lang,
                    pair_id,
                )


def test_dev_and_test_are_different_pairs():
    dev, test = read_rows("xnli.dev.tsv"), read_rows("xnli.test.tsv")
    assert not {r["pairID"] for r in dev} & {r["pairID"] for r in test}
    assert not {r["sentence1"] for r in dev} & {r["sentence1"] for r in test}
    assert not {r["sentence2"] for r in dev} & {r["sentence2"] for r in test}


def test_xnli_needs_quote_none():
    # Some sentences open with a quote mark; a default csv reader would eat it.
    text = (XNLI_DIR / "xnli.dev.tsv").read_text(encoding="utf-8")
    quoted = [r for r in read_rows("xnli.dev.tsv") if r["sentence1"].startswith('"')]
    assert quoted
    default_rows = list(csv.reader(io.StringIO(text), delimiter="\t"))[1:]
    assert {row[6] for row in default_rows} != {r["sentence1"] for r in read_rows("xnli.dev.tsv")}


def test_mnli_layout_and_balance():
    records = read_mnli()
    assert all(set(r) == MNLI_KEYS for r in records)
    assert len({r["pairID"] for r in records}) == len(records)
    counts = Counter(r["gold_label"] for r in records)
    assert counts == {"entailment": 60, "neutral": 60, "contradiction": 60, "-": 3}
    labelled = [r for r in records if r["gold_label"] != "-"]
    for r in labelled:
        assert r["pairID"] == r["promptID"] + r["gold_label"][0]
        # Most training pairs carry the writer's label only; validated ones carry five.
        annotators = r["annotator_labels"]
        if len(annotators) == 1:
            assert annotators == [r["gold_label"]]
        else:
            assert len(annotators) == 5 and majority(annotators) == r["gold_label"]
    # The MultiNLI way: every premise has one hypothesis per label.
    by_prompt = defaultdict(list)
    for r in labelled:
        by_prompt[r["promptID"]].append(r)
    assert len(by_prompt) == 60
    for group in by_prompt.values():
        assert sorted(r["gold_label"] for r in group) == sorted(LABELS)
        assert len({r["sentence1"] for r in group}) == 1


def test_mnli_no_consensus_pairs_are_skipped_and_counted():
    records = read_mnli()
    kept = [r for r in records if r["gold_label"] in LABELS]
    skipped = [r for r in records if r["gold_label"] == "-"]
    assert (len(kept), len(skipped)) == (180, 3)
    for r in skipped:
        assert len(r["annotator_labels"]) == 5 and majority(r["annotator_labels"]) == "-"


def test_mnli_parses_cover_the_sentences():
    for r in read_mnli():
        for key in ("sentence1", "sentence2"):
            binary_leaves = r[f"{key}_binary_parse"].replace("(", " ").replace(")", " ")
            assert letters(binary_leaves) == letters(r[key])
            assert r[f"{key}_parse"].startswith("(ROOT (S ")
            assert r[f"{key}_parse"].count("(") == r[f"{key}_parse"].count(")")


def test_training_pairs_do_not_leak_into_evaluation():
    train = {r["sentence1"] for r in read_mnli()} | {r["sentence2"] for r in read_mnli()}
    for name in ("xnli.dev.tsv", "xnli.test.tsv"):
        english = [r for r in read_rows(name) if r["language"] == "en"]
        assert not train & ({r["sentence1"] for r in english} | {r["sentence2"] for r in english})
