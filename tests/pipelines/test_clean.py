"""End to end tests of the cleaning job on small fixtures in the real formats.

The job runs few times (Beam start-up is the slow part): one module fixture runs the same corpus
with 1 worker (in process) and with 2 worker processes, and several tests read its outputs.
"""

from __future__ import annotations

import gzip
import json
import lzma
import random

import pytest
import zstandard

from mdeberta import io, resources_path
from mdeberta.clean_corpus import document_id
from mdeberta.languages import UnknownLanguageError
from mdeberta.manifest import read_manifest
from mdeberta.pipelines.clean import run_clean
from mdeberta.pipelines.clean_config import CleanConfig
from mdeberta.pipelines.rules import normalize_paragraph

# helpers: pseudo-text in a given alphabet, so fixtures need no real corpus

ALPHABETS = {
    "en": "abcdefghijklmnoprstuvwy",
    "ru": "абвгдежзиклмнопрстуфхцчшыэюя",
    "th": "กขคงจฉชซญดตถทนบปผพฟมยรลวสหอ",
}


def words(rng: random.Random, lang: str, n: int) -> str:
    letters = ALPHABETS[lang]
    sep = "" if lang == "th" else " "
    return sep.join(
        "".join(rng.choice(letters) for _ in range(rng.randint(2, 8))) for _ in range(n)
    )


def paragraph(rng: random.Random, lang: str) -> str:
    return words(rng, lang, rng.randint(12, 25)).capitalize() + "."


def document(rng: random.Random, lang: str, paragraphs: int = 3) -> str:
    return "\n".join(paragraph(rng, lang) for _ in range(paragraphs))


def corpus_bytes(docs: list[str]) -> bytes:
    return ("\n\n".join(docs) + "\n").encode("utf-8")


def ids_and_texts(out, lang: str) -> list[dict]:
    rows = []
    for name in io.listdir(io.join(str(out), lang)):
        with io.open_file(io.join(str(out), lang, name), "rt") as f:
            rows.extend(json.loads(line) for line in f)
    return rows


@pytest.fixture(scope="module")
def fixture_corpus(tmp_path_factory):
    """A corpus with one example of every defect, and what the job should do with each."""
    rng = random.Random(0)
    root = tmp_path_factory.mktemp("corpus")
    en = [document(rng, "en") for _ in range(30)]
    dup = en[3]
    near_dup = en[4].upper()  # equal after cc_net's normal form (case folded)
    tiny = "Too short."
    boiler = f"{document(rng, 'en', 2)}\nHome | News | Contact | About us\n© 2018 Example"
    repeated = "\n".join([paragraph(rng, "en")] * 3 + [paragraph(rng, "en")])
    wrong = f"{document(rng, 'en', 2)}\n{paragraph(rng, 'ru')}"
    digits = "12345 67890 " * 20 + "\n" + "-- 555 ++ 777 " * 20
    shared = paragraph(rng, "en")
    shares = [f"{document(rng, 'en', 2)}\n{shared}" for _ in range(2)]
    broken = document(rng, "en").encode() + b" \xff\xfe tail"
    control = "\x00" + document(rng, "en").replace(" ", "\t", 3)
    long_line = "a" * (2 << 20)  # 2 MB, over the 1 MB read limit set below
    en_docs = [*en[:3], dup, *en[3:5], near_dup, *en[5:7], tiny, boiler, repeated, wrong]
    en_docs += [*en[7:], digits, *shares, control, long_line]
    raw = corpus_bytes(en_docs)[:-1] + b"\n\n" + broken + b"\n"
    (root / "en.txt.xz").write_bytes(lzma.compress(raw))
    ru = [document(rng, "ru") for _ in range(5)]
    (root / "ru.txt.gz").write_bytes(gzip.compress(corpus_bytes(ru)))
    th = [document(rng, "th") for _ in range(5)]
    (root / "th.txt.zst").write_bytes(zstandard.ZstdCompressor().compress(corpus_bytes(th)))
    (root / "sw.txt").write_bytes(b"")
    good = lzma.compress(corpus_bytes([document(rng, "en") for _ in range(200)]))
    (root / "bad").mkdir()
    (root / "bad" / "fr.txt.xz").write_bytes(good[: len(good) // 2])
    jsonl = [
        {"text": document(rng, "ru"), "lang": "ru"},
        {"text": "x", "lang": "klingon"},
        {"text": document(rng, "en"), "lang": "en"},
    ]
    lines = [json.dumps(d, ensure_ascii=False) for d in jsonl] + ["{not json"]
    (root / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    return {
        "root": root,
        "en": en,
        "boiler": boiler,
        "wrong": wrong,
        "shares": shares,
        "control": control,
    }


@pytest.fixture(scope="module")
def runs(fixture_corpus, tmp_path_factory):
    """The job on the fixture with 1 and with 2 workers (skip bad files, 1 MB read limit)."""
    root = fixture_corpus["root"]
    inputs = [str(root / "*.txt*"), str(root / "mixed.jsonl"), str(root / "bad" / "fr.txt.xz")]
    cfg = CleanConfig(on_bad_file="skip", max_doc_chars=1 << 18, min_doc_chars=50)
    outs = {}
    for workers in (1, 2):
        out = tmp_path_factory.mktemp(f"clean{workers}")
        outs[workers] = (out, run_clean(inputs, str(out), cfg, workers=workers))
    return outs


def test_outputs_are_byte_identical_for_1_and_2_workers(runs):
    (out1, stats1), (out2, stats2) = runs[1], runs[2]
    assert stats1 == stats2
    names = sorted(stats1["languages"]["en"]["shards"])
    # a language's parts are its files' chunks: en.txt.xz's one, then mixed.jsonl's en one
    assert names == ["part-00000-of-00002.jsonl.zst", "part-00001-of-00002.jsonl.zst"]
    for lang, entry in stats1["languages"].items():
        for name in entry["shards"]:
            assert (out1 / lang / name).read_bytes() == (out2 / lang / name).read_bytes()
    assert (out1 / "stats.json").read_bytes() == (out2 / "stats.json").read_bytes()


def test_every_document_and_paragraph_is_accounted_for(runs):
    _, stats = runs[2]
    for entry in stats["languages"].values():
        assert entry["docs_in"] == entry["docs_out"] + sum(entry["removed"].values())
        assert entry["paragraphs_in"] == entry["paragraphs_out"] + sum(
            entry["paragraphs_removed"].values()
        )
    totals = stats["totals"]
    assert totals["unattributed"] == {"bad_json": 1, "unknown_language": 1}
    assert totals["docs_in"] == sum(e["docs_in"] for e in stats["languages"].values())


def test_defects_are_removed_for_their_reason(runs):
    _, stats = runs[1]
    en = stats["languages"]["en"]
    assert en["removed"] == {
        "duplicate_doc": 2,  # the exact copy and the upper-cased copy
        "repeated_paragraphs": 1,
        "low_letter_share": 1,
        "too_short": 1,
        "too_long": 1,  # the 2 MB line
    }
    assert en["paragraphs_removed"]["boilerplate"] == 2
    assert en["paragraphs_removed"]["wrong_script"] == 1
    assert en["paragraphs_removed"]["duplicate_paragraph"] == 1
    assert en["utf8_repaired"] == 1
    # the originals, boiler, wrong, 2 shares, control, broken and the JSONL one
    assert en["docs_out"] == 30 + 7


def test_paragraph_level_removals_keep_the_rest(runs, fixture_corpus):
    out, _ = runs[1]
    texts = {row["text"] for row in ids_and_texts(out, "en")}
    boiler = fixture_corpus["boiler"].split("\n")
    assert "\n".join(boiler[:2]) in texts
    wrong = fixture_corpus["wrong"].split("\n")
    assert "\n".join(wrong[:2]) in texts
    shares = fixture_corpus["shares"]  # the smaller ref keeps the shared paragraph
    assert sum(s in texts for s in shares) == 1
    assert sum("\n".join(s.split("\n")[:2]) in texts for s in shares) == 1
    control = normalize_paragraph(fixture_corpus["control"].split("\n")[0])
    assert any(t.startswith(control) for t in texts)
    assert not any("\x00" in t or "\t" in t or "\ufffd" in t for t in texts)


def test_output_rows_have_stable_ids_in_input_order(runs, fixture_corpus):
    out, _ = runs[1]
    rows = ids_and_texts(out, "en")
    assert [list(r) for r in rows[:1]] == [["id", "lang", "text"]]
    assert all(r["lang"] == "en" for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    first_part = sorted(io.listdir(io.join(str(out), "en")))[0]
    assert first_part == "part-00000-of-00002.jsonl.zst"  # listdir order is not the parts' order
    with io.open_file(io.join(str(out), "en", first_part), "rt") as f:
        texts = [json.loads(line)["text"] for line in f]
    en = fixture_corpus["en"]
    assert texts[:4] == en[:4]  # en[3] twice: the first copy (smallest position) survives
    jsonl_doc = [r for r in rows if r["id"] == document_id("en", r["text"])]
    assert len(jsonl_doc) >= 30  # unchanged documents keep the id of their own text


def test_formats_languages_and_bad_files_are_counted(runs):
    _, stats = runs[1]
    langs = stats["languages"]
    assert sorted(langs) == ["en", "fr", "ru", "sw", "th"]
    assert langs["ru"]["docs_in"] == 6 and langs["ru"]["docs_out"] == 6  # 5 from .gz, 1 JSONL
    assert langs["th"]["docs_out"] == 5  # .zst; Thai has no spaces between words
    assert langs["sw"]["docs_in"] == 0 and langs["sw"]["shards"] == {}  # an empty file
    fr = langs["fr"]
    assert fr["bad_files"] == 1 and 0 < fr["docs_out"] < 200  # what came before the damage
    # a document cut by the damage, if any of its lines came out, is removed as bad_file
    assert fr["docs_in"] == fr["docs_out"] + fr["removed"].get("bad_file", 0)
    assert "fr.txt.xz" in stats["totals"]["bad_file_errors"][0]


def test_manifest_is_written_last_and_lists_the_files(runs):
    out, stats = runs[2]
    manifest = read_manifest(str(out), kind="clean-corpus")
    assert "en/part-00000-of-00002.jsonl.zst" in manifest["files"]
    assert not (out / "_job").exists()  # the scratch files are gone once the job succeeded
    assert manifest["files"]["stats.json"]["sha256"] == io.sha256_file(str(out / "stats.json"))
    assert manifest["totals"] == stats["totals"]
    assert manifest["options"]["on_bad_file"] == "skip"


def test_corrupt_file_fails_naming_it(fixture_corpus, tmp_path):
    bad = fixture_corpus["root"] / "bad" / "fr.txt.xz"
    with pytest.raises(Exception, match="fr.txt.xz"):
        run_clean([str(bad)], str(tmp_path / "out"), CleanConfig(), workers=1)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_missing_input_and_unknown_language_fail_before_work(fixture_corpus, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.txt.xz"):
        run_clean([str(tmp_path / "nowhere.txt.xz")], str(tmp_path / "o"), CleanConfig())
    root = str(fixture_corpus["root"] / "*.txt*")
    with pytest.raises(UnknownLanguageError, match="did you mean.*en"):
        run_clean([root], str(tmp_path / "o"), CleanConfig(languages="eng,xx"))
    assert not (tmp_path / "o").exists()


def test_max_docs_per_lang_takes_the_first_documents_by_file_order(tmp_path):
    rng = random.Random(1)
    docs = [document(rng, "en") for _ in range(6)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "en.txt").write_bytes(corpus_bytes(docs[:2]))
    (tmp_path / "b" / "en.txt").write_bytes(corpus_bytes(docs[2:]))
    (tmp_path / "a" / "ru.txt").write_bytes(corpus_bytes([document(rng, "ru")]))
    inputs = [str(tmp_path / "a"), str(tmp_path / "b")]
    cfg = CleanConfig(max_docs_per_lang=3, languages="en,sw")
    stats = run_clean(inputs, str(tmp_path / "out"), cfg, workers=1)
    assert list(stats["languages"]) == ["en", "sw"]  # ru.txt is not read at all
    assert stats["languages"]["sw"]["docs_in"] == 0  # asked for, no input: an empty entry
    en = stats["languages"]["en"]
    # b/en.txt stops after its 3rd document; 2 of those are past the cap of 3
    assert en["docs_in"] == 3 and en["docs_out"] == 3 and en["docs_over_cap"] == 2
    texts = {row["text"] for row in ids_and_texts(tmp_path / "out", "en")}
    assert texts == set(docs[:3])


# the packaged sample corpus: its README lists deliberate defects, which the defaults must catch

SAMPLE_LANGS = ("de", "el", "en", "es", "it")
DOC_DEFECTS = {
    "duplicate-document": "duplicate_doc",
    "tiny-document": "too_short",
    "repeated-paragraphs": "repeated_paragraphs",
}
PARAGRAPH_DEFECTS = {"boilerplate": "boilerplate", "wrong-script": "wrong_script"}


def sample_defects() -> dict[str, list[tuple[int, str, str]]]:
    """{lang: [(document number, defect, detail)]} from the sample README's defect table."""
    readme = resources_path("sample", "README.md").read_text(encoding="utf-8")
    table = readme.split("## Deliberate defects", 1)[1]
    defects: dict[str, list] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].endswith(".txt.xz"):
            lang = cells[0].removesuffix(".txt.xz")
            for number in cells[1].split(","):
                defects.setdefault(lang, []).append((int(number), cells[2], cells[3]))
    return defects


def sample_documents(lang: str) -> list[list[str]]:
    with lzma.open(resources_path("sample", f"{lang}.txt.xz"), "rt", encoding="utf-8") as f:
        return [block.split("\n") for block in f.read().strip("\n").split("\n\n")]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """The job with default settings on five languages of the packaged sample corpus."""
    files = [str(resources_path("sample", f"{lang}.txt.xz")) for lang in SAMPLE_LANGS]
    out = tmp_path_factory.mktemp("sample")
    return out, run_clean(files, str(out), CleanConfig(), workers=1)


def test_sample_corpus_keeps_normal_documents_and_removes_the_defects(sample_run):
    tmp_path, stats = sample_run
    defects = sample_defects()
    for lang in SAMPLE_LANGS:
        entry, listed = stats["languages"][lang], defects.get(lang, [])
        doc_reasons = [DOC_DEFECTS[d] for _, d, _ in listed if d in DOC_DEFECTS]
        para_reasons = [PARAGRAPH_DEFECTS[d] for _, d, _ in listed if d in PARAGRAPH_DEFECTS]
        assert doc_reasons or para_reasons, f"{lang}: the README lists no defect"
        assert sorted(entry["removed"]) == sorted(set(doc_reasons)), lang
        assert sum(entry["removed"].values()) == len(doc_reasons), lang
        for reason in set(para_reasons):
            assert entry["paragraphs_removed"][reason] == para_reasons.count(reason), lang
        # every other document comes out whole; paragraph defects leave the rest of theirs
        expected = []
        for number, paragraphs in enumerate(sample_documents(lang), start=1):
            mine = [(d, detail) for n, d, detail in listed if n == number]
            if any(d in DOC_DEFECTS for d, _ in mine):
                continue
            for _, detail in mine:
                bad = int(detail.split("paragraph ", 1)[1].split()[0])
                paragraphs = paragraphs[: bad - 1] + paragraphs[bad:]
            expected.append("\n".join(paragraphs))
        texts = sorted(row["text"] for row in ids_and_texts(tmp_path, lang))
        assert texts == sorted(expected), lang


def test_cli_takes_inputs_before_beam_options(tmp_path):
    from typer.testing import CliRunner

    from mdeberta.cli import app

    (tmp_path / "xx.txt").write_text("no such language\n")  # fails after the inputs are found
    args = ["clean", str(tmp_path / "xx.txt"), "--job_name", "j", "--output", str(tmp_path / "o")]
    result = CliRunner().invoke(app, args)
    # had "--job_name j" been taken for inputs, they would not be found
    assert isinstance(result.exception, UnknownLanguageError), result.output
    assert "'xx'" in str(result.exception)


def test_every_shard_gets_a_file_and_duplicates_are_dropped_across_shards(tmp_path):
    """Many shards per language: drops must reach the shard of their document, and a shard no
    document reaches (or whose documents were all removed) still gets its (empty) part file."""
    rng = random.Random(2)
    docs = [document(rng, "en") for _ in range(12)]
    (tmp_path / "en.txt").write_bytes(corpus_bytes(docs + docs[:4]))  # 4 exact duplicates
    (tmp_path / "ru.txt").write_bytes(corpus_bytes(["Коротко."] * 3))  # all too short
    cfg = CleanConfig(shard_chars=600)
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        stats = run_clean([str(tmp_path / "*.txt")], str(out), cfg, workers=workers)
        en, ru = stats["languages"]["en"], stats["languages"]["ru"]
        assert en["docs_out"] == 12 and en["removed"] == {"duplicate_doc": 4}
        assert len(en["shards"]) > 4 and sum(s["docs"] for s in en["shards"].values()) == 12
        assert ru["docs_out"] == 0 and list(ru["shards"]) == ["part-00000-of-00001.jsonl.zst"]
        for lang, entry in stats["languages"].items():
            assert len(ids_and_texts(out, lang)) == entry["docs_out"]
            for name, info in entry["shards"].items():
                assert io.sha256_file(str(out / lang / name)) == info["sha256"]
        assert read_manifest(str(out), kind="clean-corpus")["files"].keys() >= {
            f"en/{name}" for name in en["shards"]
        }
