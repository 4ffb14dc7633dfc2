"""The XNLI / MultiNLI loaders on small files in each source's real format."""

from __future__ import annotations

import json

import pytest

from mdeberta import resources_path
from mdeberta.eval.data import default_dev, load_nli, parse_source
from mdeberta.eval.nli import LABELS, DataError

XNLI_HEADER = (
    "language gold_label sentence1_binary_parse sentence2_binary_parse sentence1_parse "
    "sentence2_parse sentence1 sentence2 promptID pairID genre label1 label2 label3 label4 "
    "label5 sentence1_tokenized sentence2_tokenized match"
).split()
# (premise, hypothesis, label name) in each source's spelling
PAIRS = [
    ('He said "no" and left.', "He left.", "entailment"),
    ("The shop opens at nine.", "The shop is busy.", "neutral"),
    ("It rained all day.", "It was dry all day.", "contradiction"),
]
EXPECTED = [(p, h, LABELS.index(label)) for p, h, label in PAIRS]


def xnli_row(lang: str, premise: str, hypothesis: str, label: str) -> str:
    fields = [lang, label, "", "", "", "", premise, hypothesis, "1", "1", "fiction"]
    fields += [label] * 5 + [premise, hypothesis, "True"]
    return "\t".join(fields)


def write_xnli_tsv(path, languages=("en", "de"), extra_rows=()) -> str:
    rows = [xnli_row(lang, *pair) for lang in languages for pair in PAIRS]
    path.write_text("\n".join(["\t".join(XNLI_HEADER), *rows, *extra_rows]) + "\n")
    return str(path)


def triples(data, lang):
    return [(p.premise, p.hypothesis, p.label) for p in data.pairs[lang]]


def test_xnli_tsv_keeps_quotes_and_maps_labels(tmp_path):
    path = write_xnli_tsv(tmp_path / "xnli.test.tsv")
    data = load_nli(f"xnli-tsv:{path}", "test", ["de", "en"])
    assert list(data.pairs) == ["de", "en"]
    assert triples(data, "de") == EXPECTED  # the stray quotes survive (QUOTE_NONE)
    assert data.rows == 6 and not data.skipped


def test_multinli_jsonl_skips_and_counts_no_gold_label(tmp_path):
    rows = [
        {"sentence1": p, "sentence2": h, "gold_label": lab, "pairID": "x"} for p, h, lab in PAIRS
    ]
    rows.append({"sentence1": "a", "sentence2": "b", "gold_label": "-", "pairID": "y"})
    path = tmp_path / "multinli_1.0_train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = load_nli(f"multinli:{path}", "train", ["en"])
    assert triples(data, "en") == EXPECTED
    assert data.skipped == {"no_gold_label": 1} and data.malformed == 0
    with path.open("a") as f:
        f.write('{"sentence1": "cut off\n')
    data = load_nli(f"multinli:{path}", "train", ["en"], max_malformed_fraction=0.5)
    assert data.skipped == {"no_gold_label": 1, "bad_json": 1}
    assert data.summary()["malformed_examples"] == [f"{path}:5: bad_json"]


def test_mt_tsv_reads_contradictory_and_language_from_name(tmp_path):
    path = tmp_path / "multinli.train.de.tsv"
    rows = [
        f"{p}\t{h}\t{'contradictory' if lab == 'contradiction' else lab}" for p, h, lab in PAIRS
    ]
    path.write_text("premise\thypo\tlabel\n" + "\n".join(rows) + "\n")
    data = load_nli(str(path), "train", ["de"])  # a bare path: recognised by its header
    assert data.source.startswith("mt-tsv:")
    assert triples(data, "de") == EXPECTED


def _features(names):
    import datasets

    return datasets.Features(
        {
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(names)),
        }
    )


def _table(names, languages=None):
    """A datasets table of PAIRS whose integer labels follow `names`."""
    import datasets

    columns = {
        "premise": [p for p, _, _ in PAIRS],
        "hypothesis": [h for _, h, _ in PAIRS],
        "label": [list(names).index(lab) for _, _, lab in PAIRS],
    }
    return datasets.Dataset.from_dict(columns, features=_features(names))


@pytest.fixture
def hub_repo(tmp_path, monkeypatch):
    """A local copy of the facebook/xnli repo layout: one parquet config per language, labels
    0 entailment, 1 neutral, 2 contradiction (the hub's order), README configs as on the hub."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "xnli"
    splits = ("train", "validation", "test")
    readme = ["---", "configs:"]
    for lang in ("en", "de", "sw"):
        readme += [f"- config_name: {lang}", "  data_files:"]
        for split in splits:
            (root / lang).mkdir(parents=True, exist_ok=True)
            _table(LABELS).to_parquet(str(root / lang / f"{split}-00000-of-00001.parquet"))
            readme += [f"  - split: {split}", f"    path: {lang}/{split}-*"]
    (root / "README.md").write_text("\n".join([*readme, "---", ""]))
    return root


def test_hub_loader_per_language_configs(hub_repo):
    """The production code path: datasets.load_dataset(NAME, lang, split=...), here on a local
    copy of the repo instead of the hub id (nothing is patched but the cache directory)."""
    data = load_nli(f"hub:{hub_repo}", "test", ["sw", "en"])
    assert list(data.pairs) == ["sw", "en"]
    assert triples(data, "sw") == EXPECTED
    dev = load_nli(f"hub:{hub_repo}", "dev", ["en"])  # dev -> the "validation" split
    assert triples(dev, "en") == EXPECTED


def test_hub_all_languages_config_is_exploded(tmp_path, monkeypatch):
    """facebook/xnli's all_languages config: premise {lang: text}, hypothesis {language: [..],
    translation: [..]}."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    langs = ["de", "en"]
    features = datasets.Features(
        {
            "premise": datasets.Translation(languages=langs),
            "hypothesis": datasets.TranslationVariableLanguages(languages=langs),
            "label": datasets.ClassLabel(names=list(LABELS)),
        }
    )
    rows = {
        "premise": [{lang: p for lang in langs} for p, _, _ in PAIRS],
        "hypothesis": [{"language": langs, "translation": [h, h]} for _, h, _ in PAIRS],
        "label": [LABELS.index(lab) for _, _, lab in PAIRS],
    }
    root = tmp_path / "xnli-all"
    (root / "all_languages").mkdir(parents=True)
    table = datasets.Dataset.from_dict(rows, features=features)
    table.to_parquet(str(root / "all_languages" / "test-00000-of-00001.parquet"))
    readme = "---\nconfigs:\n- config_name: all_languages\n  data_files:\n"
    readme += "  - split: test\n    path: all_languages/test-*\n---\n"
    (root / "README.md").write_text(readme)
    data = load_nli(f"hub:{root}?config=all_languages", "test", ["en", "de"])
    assert triples(data, "en") == EXPECTED and triples(data, "de") == EXPECTED


def test_disk_dataset_maps_labels_by_name_not_index(tmp_path):
    """XTREME orders labels contradiction, entailment, neutral: the names decide, not the ids."""
    import datasets

    xtreme = ("contradiction", "entailment", "neutral")
    path = tmp_path / "saved"
    datasets.DatasetDict({"test": _table(xtreme), "train": _table(LABELS)}).save_to_disk(str(path))
    data = load_nli(str(path), "test", ["fr"])  # a bare directory: recognised as save_to_disk
    assert data.source.startswith("disk:")
    assert triples(data, "fr") == EXPECTED


def test_integer_labels_without_names_need_labels_param(tmp_path):
    import datasets

    ids = [0, 1, 2]
    rows = {"premise": [p for p, _, _ in PAIRS], "hypothesis": [h for _, h, _ in PAIRS]}
    path = tmp_path / "plain"
    datasets.Dataset.from_dict(rows | {"label": ids}).save_to_disk(str(path))
    with pytest.raises(DataError, match="labels="):
        load_nli(f"disk:{path}", "test", ["en"])
    data = load_nli(f"disk:{path}?labels=entailment,neutral,contradiction", "test", ["en"])
    assert triples(data, "en") == EXPECTED


def test_directory_gives_each_role_its_file(tmp_path):
    write_xnli_tsv(tmp_path / "xnli.dev.tsv")
    write_xnli_tsv(tmp_path / "xnli.test.tsv", languages=("en", "zh"))
    rows = [{"sentence1": p, "sentence2": h, "gold_label": lab} for p, h, lab in PAIRS]
    (tmp_path / "multinli.train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert parse_source(str(tmp_path), "train").kind == "multinli"
    assert parse_source(str(tmp_path), "dev").location.endswith("xnli.dev.tsv")
    assert "zh" in load_nli(str(tmp_path), "test", ["zh"]).pairs


def test_missing_language_names_what_is_there(tmp_path):
    path = write_xnli_tsv(tmp_path / "xnli.test.tsv")
    with pytest.raises(DataError, match=r"no pairs for language\(s\) sw.*it has: de, en"):
        load_nli(path, "test", ["en", "sw"])


def test_malformed_rows_are_counted_and_reported(tmp_path):
    bad = [
        "en\tentailment\tonly three",
        xnli_row("en", "a", "b", "maybe"),
        xnli_row("en", "", "b", "neutral"),
    ]
    path = write_xnli_tsv(tmp_path / "xnli.test.tsv", extra_rows=bad)
    data = load_nli(path, "test", ["en"], max_malformed_fraction=0.5)
    assert dict(data.skipped) == {"wrong_column_count": 1, "unknown_label": 1, "empty_text": 1}
    assert triples(data, "en") == EXPECTED
    assert data.summary()["malformed_examples"][0].endswith("xnli.test.tsv:8: wrong_column_count")
    with pytest.raises(DataError, match=r"3 of 9 rows are malformed.*xnli.test.tsv:8"):
        load_nli(path, "test", ["en"], max_malformed_fraction=0.1)


def test_unknown_source_kind_lists_the_valid_ones(tmp_path):
    with pytest.raises(DataError, match="unknown source kind 'hf'.*hub, xnli-tsv, multinli"):
        load_nli("hf:facebook/xnli", "test", ["en"])
    with pytest.raises(DataError, match="no such file or directory.*hub:NAME"):
        load_nli(str(tmp_path / "nope.tsv"), "test", ["en"])
    with pytest.raises(DataError, match="unknown parameter"):
        parse_source("hub:facebook/xnli?splt=test", "test")


def test_the_default_dev_set_is_the_test_sources_own(tmp_path):
    """Local --train/--test and no --dev: the dev set comes from the same place, not the hub."""
    fixture = str(resources_path("xnli"))
    assert default_dev(fixture) == f"xnli-tsv:{fixture}/xnli.dev.tsv"
    assert default_dev(f"xnli-tsv:{fixture}/xnli.test.tsv") == f"xnli-tsv:{fixture}/xnli.dev.tsv"
    assert default_dev("hub:facebook/xnli?split=test") == "hub:facebook/xnli"  # validation
    alone = tmp_path / "xnli.test.tsv"
    alone.write_bytes((resources_path("xnli") / "xnli.test.tsv").read_bytes())
    with pytest.raises(DataError, match=r"no dev set beside .* --dev none"):
        default_dev(str(alone))


def test_an_unreachable_hub_fails_at_once_naming_what_and_the_local_route(monkeypatch):
    """A hub that cannot be reached (a name that never resolves, RFC 6761) is one error, before
    huggingface_hub's ~25 s of retries."""
    from huggingface_hub import constants

    from mdeberta.eval import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "https://hub.invalid")
    hub._hub_unreachable.cache_clear()
    try:
        with pytest.raises(DataError, match=r"cannot reach the Hugging Face hub \(https://hub"):
            load_nli("hub:facebook/xnli", "dev", ["en"])
        with pytest.raises(DataError, match=r"to fetch the dev set hub:facebook/xnli; .*--dev"):
            load_nli("hub:facebook/xnli", "dev", ["en"])
    finally:
        hub._hub_unreachable.cache_clear()
