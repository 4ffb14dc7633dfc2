"""Parallel-sentence sources for retrieval: every format, language names, what is skipped."""

import pytest

from mdeberta import resources_path
from mdeberta.eval.nli import DataError
from mdeberta.eval.parallel import language_code, load_parallel, parse_parallel_source

EN = ["The cat sleeps.", "It is raining.", "I read a book.", "We eat bread."]
DE = ["Die Katze schläft.", "Es regnet.", "Ich lese ein Buch.", "Wir essen Brot."]
ZH = ["猫在睡觉。", "下雨了。", "我在看书。", "我们吃面包。"]


def write_laser(root, name: str, english: list[str], other: list[str]) -> None:
    root.mkdir(exist_ok=True)
    (root / f"tatoeba.{name}-eng.{name}").write_text("\n".join(other) + "\n", encoding="utf-8")
    (root / f"tatoeba.{name}-eng.eng").write_text("\n".join(english) + "\n", encoding="utf-8")


def test_laser_layout_with_iso639_3_and_cc100_names(tmp_path):
    write_laser(tmp_path, "deu", EN, DE)
    write_laser(tmp_path, "zh-Hans", EN, ZH)
    data = load_parallel(str(tmp_path))  # recognised by its file names
    assert list(data) == ["de", "zh-Hans"]
    assert data["de"].english == EN and data["de"].other == DE
    assert data["zh-Hans"].other == ZH
    assert load_parallel(f"laser:{tmp_path}", ["cmn"])["zh-Hans"].other == ZH  # Tatoeba's name
    assert list(load_parallel(f"laser:{tmp_path}", ["de"])) == ["de"]


def test_unequal_line_counts_name_both_files(tmp_path):
    write_laser(tmp_path, "deu", EN, DE[:3])
    with pytest.raises(DataError, match=r"tatoeba.deu-eng.deu has 3 lines but .*eng has 4"):
        load_parallel(str(tmp_path))


def test_empty_and_repeated_lines_are_counted_with_their_place(tmp_path):
    english = [*EN, "", "The cat sleeps.", "The cat sleeps.", "Good night."]
    other = [*DE, "Leer?", "Die Katze schläft.", "Die Katze schläft gerade.", "Es regnet."]
    write_laser(tmp_path, "deu", english, other)
    pairs = load_parallel(str(tmp_path))["de"]
    assert pairs.english == EN and pairs.other == DE
    assert dict(pairs.skipped) == {"empty_line": 1, "repeated_pair": 1, "repeated_sentence": 2}
    assert pairs.examples[0].endswith("tatoeba.deu-eng.deu:5: empty_line")
    assert len(pairs) + sum(pairs.skipped.values()) == len(english)  # every line accounted for


def test_tsv_files_and_their_errors(tmp_path):
    (tmp_path / "de.tsv").write_text(
        "".join(f"{e}\t{d}\n" for e, d in zip(EN, DE, strict=True)), encoding="utf-8"
    )
    (tmp_path / "jpn.tsv").write_text("Hello.\tこんにちは。\n", encoding="utf-8")
    data = load_parallel(str(tmp_path))
    assert list(data) == ["de", "ja"]
    assert data["de"].other == DE
    single = load_parallel(f"tsv:{tmp_path / 'de.tsv'}")
    assert single["de"].english == EN
    (tmp_path / "de.tsv").write_text("one\ttwo\nthree columns\there\tnow\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"de.tsv:2: 3 columns"):
        load_parallel(f"tsv:{tmp_path / 'de.tsv'}")
    other = tmp_path / "pairs.tsv"
    other.write_text("a\tb\n", encoding="utf-8")
    with pytest.raises(DataError, match="not a language code"):
        load_parallel(f"tsv:{other}")
    assert load_parallel(f"tsv:{other}?lang=fr")["fr"].other == ["b"]


def test_packaged_xnli_fixture_pairs_each_language_with_english_by_pair_id():
    data = load_parallel(str(resources_path("xnli")))
    assert len(data) == 14 and "en" not in data and "zh-Hans" in data
    de = data["de"]
    index = de.english.index("Thank you for the book you sent me for my birthday.")
    assert de.other[index].startswith("Danke")
    # a premise shared by three pairs is one retrieval pair: the repeats are counted
    assert de.skipped["repeated_pair"] > 0
    assert len(set(de.english)) == len(de.english)


@pytest.fixture
def xtreme_repo(tmp_path, monkeypatch):
    """A local copy of google/xtreme's layout for two tatoeba configs (parquet, one validation
    split each; source = the translation, target = English, as the hub's rows are)."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "xtreme"
    readme = ["---", "configs:"]
    for code, other in (("deu", DE), ("cmn", ZH)):
        (root / f"tatoeba.{code}").mkdir(parents=True)
        table = datasets.Dataset.from_dict(
            {
                "source_sentence": [f"{s}\n" for s in other],  # the hub keeps the newlines
                "target_sentence": [f"{s}\n" for s in EN],
                "source_lang": [code] * len(EN),
                "target_lang": ["eng"] * len(EN),
            }
        )
        table.to_parquet(str(root / f"tatoeba.{code}" / "validation-00000-of-00001.parquet"))
        readme += [f"- config_name: tatoeba.{code}", "  data_files:"]
        readme += ["  - split: validation", f"    path: tatoeba.{code}/validation-*"]
    (root / "README.md").write_text("\n".join([*readme, "---", ""]))
    return root


def test_hub_loader_reads_the_tatoeba_configs(xtreme_repo):
    """The production path: datasets.load_dataset(NAME, "tatoeba.xxx", split="validation"), on a
    local copy of the repo instead of the hub id."""
    data = load_parallel(f"hub:{xtreme_repo}", ["zh-Hans", "de"])
    assert list(data) == ["zh-Hans", "de"]
    assert data["de"].english == EN and data["de"].other == DE
    assert data["zh-Hans"].other == ZH


def test_sources_and_languages_fail_clearly(tmp_path):
    write_laser(tmp_path, "deu", EN, DE)
    with pytest.raises(DataError, match="no pairs for fr; it has de"):
        load_parallel(str(tmp_path), ["fr"])
    with pytest.raises(DataError, match="unknown parallel source kind 'tatoeba'"):
        parse_parallel_source("tatoeba:/x")
    with pytest.raises(DataError, match="no such file or directory"):
        load_parallel(str(tmp_path / "missing"))
    with pytest.raises(DataError, match="unknown parameter"):
        parse_parallel_source(f"{tmp_path}?lng=de")
    assert language_code("deu") == "de" and language_code("pes") == "fa"
    assert language_code("qqq") == "qqq"  # not in the registry: the source's own name stays
