import dataclasses
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
from typer.testing import CliRunner

from mdeberta import io
from mdeberta.clean_corpus import Part, part_name, read_part, write_corpus_manifest, write_part
from mdeberta.cli import app
from mdeberta.config import ConfigError, field_docs
from mdeberta.manifest import IncompleteArtifactError
from mdeberta.pipelines.sampling import sampling_probabilities
from mdeberta.pipelines.shard import ShardConfig, run
from mdeberta.shard_reader import ShardDataset
from mdeberta.shards import VocabMismatchError
from tests.tiny_vocab import write_tiny_vocab

SEQ_LEN = 24
# Disjoint alphabets: the letters of a decoded sequence tell its language.
ALPHABETS = {"en": "abcdefg", "de": "hijklmn", "sw": "opqrstu"}
DOCS = {"en": 240, "de": 80, "sw": 12}


def words(rng, letters, n):
    return " ".join(
        "".join(rng.choice(letters) for _ in range(rng.randint(2, 6))) for _ in range(n)
    )


def corpus_docs():
    rng = random.Random(0)
    return {
        lang: [
            {
                "id": f"{lang}-{i:04d}",
                "lang": lang,
                "text": "\n".join(
                    words(rng, ALPHABETS[lang], rng.randint(3, 12))
                    for _ in range(rng.randint(1, 3))
                ),
            }
            for i in range(n)
        ]
        for lang, n in DOCS.items()
    }


def write_corpus(root, docs):
    """A clean corpus in the real layout: {lang}/part-*.jsonl.zst, stats.json, manifest."""
    stats, parts = {}, {}
    for lang, items in docs.items():
        halves = [items[::2], items[1::2]]
        for i, half in enumerate(halves):
            name = f"{lang}/{part_name(i, 2)}"
            records = [(d["id"], d["lang"], d["text"]) for d in half]
            parts[name] = write_part(f"{root}/{name}", records, level=3)
        chars = sum(len(d["text"]) for d in items)
        paragraphs = sum(d["text"].count("\n") + 1 for d in items)
        stats[lang] = {
            "docs_in": len(items),
            "docs_out": len(items),
            "paragraphs_in": paragraphs,
            "paragraphs_out": paragraphs,
            "chars_in": chars,
            "chars_out": chars,
            "removed": {},
        }
    io.write_json(f"{root}/stats.json", {"languages": stats, "totals": {}})
    write_corpus_manifest(str(root), parts, {})
    return str(root)


def write_vocab(root, docs, vocab_size=320):
    """A real tiny SentencePiece vocabulary dir: ids 0-3 [PAD] [CLS] [SEP] [UNK], [MASK] last."""
    lines = [p for items in docs.values() for d in items for p in d["text"].split("\n")]
    write_tiny_vocab(root, lines, vocab_size, byte_fallback=True)
    return str(root)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inputs")
    docs = corpus_docs()
    return write_corpus(tmp / "clean", docs), write_vocab(tmp / "vocab", docs)


def config(inputs, output, **kw):
    corpus, vocab = inputs
    kw = {
        "seq_len": SEQ_LEN,
        "sequences_per_shard": 40,
        "max_passes": 3.0,
        "chunk_chars": 3000,
        **kw,
    }
    return ShardConfig(corpus=corpus, vocab=vocab, output=str(output), **kw)


@pytest.fixture(scope="module")
def job(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    return out, run(config(inputs, out))


def shard_rows(out, shards, seq_len=SEQ_LEN):
    """The rows of these shard entries ({"name", ...}) in directory `out`, in order."""
    return np.concatenate([np.fromfile(out / s["name"], "<u4") for s in shards]).reshape(
        -1, seq_len
    )


def test_job_writes_monolingual_cls_sep_sequences(job, inputs):
    out, m = job
    rows = shard_rows(out, m["shards"])
    assert m["kind"] == "token-shards" and m["seq_len"] == SEQ_LEN and m["dtype"] == "uint32"
    assert len(rows) == m["num_sequences"] == sum(v["sequences"] for v in m["languages"].values())
    assert [s["sequences"] for s in m["shards"][:-1]] == [40] * (len(m["shards"]) - 1)
    assert (rows[:, 0] == 1).all() and (rows[:, -1] == 2).all() and (rows[:, 1] != 2).all()
    assert (rows < m["vocab"]["vocab_size"] - 1).all()
    sp = spm.SentencePieceProcessor(model_file=f"{inputs[1]}/spm.model")
    langs_seen = set()
    for row in rows:
        letters = set("".join(sp.decode(row[1:-1].tolist()).split()))
        (lang,) = [k for k, a in ALPHABETS.items() if letters <= set(a)]  # exactly one language
        langs_seen.add(lang)
    assert langs_seen == set(DOCS)
    assert m["packing"]["chunks"]["en"] > 2  # more chunks than en's 2 part files: chunk_chars
    for v in m["languages"].values():
        # every content token of the drawn docs is in a sequence, or counted as dropped
        seps = v["documents"] - 1
        assert v["sequences"] * (SEQ_LEN - 2) <= v["tokens"] + seps
        assert v["tokens"] + seps - v["dropped_tokens"] - v["sequences"] * (SEQ_LEN - 2) >= 0


def test_job_samples_with_alpha_and_reports_capped_languages(job, inputs):
    _, m = job
    chars = {
        k: v["chars_out"] for k, v in io.read_json(f"{inputs[0]}/stats.json")["languages"].items()
    }
    q = sampling_probabilities(chars, 0.3)
    assert {k: v["q"] for k, v in m["languages"].items()} == pytest.approx(q)
    assert m["sampling"]["alpha"] == 0.3
    sw = m["languages"]["sw"]
    assert sw["capped"] and sw["passes"] == 3.0 and not m["languages"]["en"]["capped"]
    assert 2.5 * DOCS["sw"] < sw["documents"] <= 3 * DOCS["sw"]  # repeated, at most 3 passes
    assert m["languages"]["en"]["documents"] < DOCS["en"]  # subsampled
    assert m["vocab"]["sha256"] == io.sha256_file(f"{inputs[1]}/spm.model")
    assert set(m["inputs"]) == {"corpus", "vocab"}


def test_bytes_identical_with_two_workers_via_the_cli(job, inputs, tmp_path):
    out, m = job
    args = [
        "--corpus",
        inputs[0],
        "--vocab",
        inputs[1],
        "--output",
        str(tmp_path),
        "--seq-len",
        str(SEQ_LEN),
        "--sequences-per-shard",
        "40",
        "--max-passes",
        "3",
        "--workers",
        "2",
        "--set",
        "chunk_chars=3000",
        "--set",
        "encode_batch=7",
        "--strict",  # the vocabulary fits every language: nothing to refuse
        "--direct_running_mode=multi_processing",
    ]
    result = CliRunner().invoke(app, ["shard", *args])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["capped_languages"] == ["sw"]
    m2 = io.read_json(f"{tmp_path}/manifest.json")
    assert m2["shards"] == m["shards"] and m2["languages"] == m["languages"]
    for s in m["shards"]:
        assert (tmp_path / s["name"]).read_bytes() == (out / s["name"]).read_bytes()
    assert not (tmp_path / "_job").exists()


def test_reader_reads_job_output_and_checks_vocabulary(job, inputs, tmp_path):
    out, m = job
    ds = ShardDataset(str(out), seed=1)
    assert ds.num_samples == m["num_sequences"] and ds.vocab_sha256 == m["vocab"]["sha256"]
    ds.check_vocab(inputs[1])
    docs = corpus_docs()
    other = write_vocab(tmp_path / "other", {"en": docs["en"][:100]}, vocab_size=300)
    with pytest.raises(VocabMismatchError, match=m["vocab"]["sha256"]):
        ds.check_vocab(other)


def test_seed_changes_order_not_content(job, inputs, tmp_path):
    out, m = job
    m2 = run(config(inputs, tmp_path, seed=0, sequences_per_shard=1000))
    assert m2["num_sequences"] == m["num_sequences"]
    np.testing.assert_array_equal(
        np.sort(shard_rows(out, m["shards"]), axis=0),
        np.sort(shard_rows(tmp_path, m2["shards"]), axis=0),
    )


def test_rows_travel_in_blocks_without_changing_a_byte(job, inputs, tmp_path, monkeypatch):
    import mdeberta.pipelines.pack

    monkeypatch.setattr(mdeberta.pipelines.pack, "BLOCK_BYTES", SEQ_LEN * 4 * 5)  # 5 rows a block
    out, m = job
    assert run(config(inputs, tmp_path))["shards"] == m["shards"]  # same sizes and sha256s


def test_bad_inputs_fail_clearly(job, inputs, tmp_path):
    out, _ = job
    with pytest.raises(FileExistsError, match="--overwrite"):
        run(config(inputs, out))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(IncompleteArtifactError, match="empty"):
        run(config((str(empty), inputs[1]), tmp_path / "o"))
    with pytest.raises(ConfigError, match="seq_len"):
        config(inputs, tmp_path / "o", seq_len=2)
    with pytest.raises(ValueError, match="no full sequence"):
        run(config(inputs, tmp_path / "o2", seq_len=100_000))


def test_clean_documents_are_read_in_chunks_and_bad_lines_named(tmp_path, monkeypatch):
    import mdeberta.clean_corpus

    monkeypatch.setattr(mdeberta.clean_corpus, "_JSON_CHUNK", 64)  # several chunks per file
    docs = [{"id": str(i), "lang": "de", "text": f"Text {i}\nzwei"} for i in range(40)]
    lines = [json.dumps(d) for d in docs]

    def part(name, rows):
        url = str(tmp_path / name)
        with io.open_file(url, "wt") as f:
            f.write("\n".join(rows) + "\n")
        return url

    assert list(read_part(Part("de", part("ok.jsonl.zst", lines)))) == docs
    bad = part("bad.jsonl.zst", lines[:30] + ["{oops"] + lines[30:])
    with pytest.raises(ValueError, match=r"bad.jsonl.zst:31: not a JSON document"):
        list(read_part(Part("de", bad)))
    two = part("two.jsonl.zst", lines[:5] + [f"{lines[5]}, {lines[6]}"] + lines[7:])
    with pytest.raises(ValueError, match=r"two.jsonl.zst:6: not a JSON document"):
        list(read_part(Part("de", two)))  # a line of two documents is no JSONL line
    other = part("fr.jsonl.zst", lines[:12] + [json.dumps({"id": "x", "lang": "fr", "text": ""})])
    with pytest.raises(ValueError, match=r"fr.jsonl.zst:13: document of language 'fr'"):
        list(read_part(Part("de", other)))


def test_every_config_field_is_documented():
    names = {f.name for f in dataclasses.fields(ShardConfig)}
    assert set(field_docs(ShardConfig)) == names


def test_job_writes_to_an_fsspec_url(job, inputs, tmp_path):
    out, m = job
    url = f"memory://shard-job-{tmp_path.name}"
    m2 = run(config(inputs, url))
    assert m2["shards"] == m["shards"]
    ds = ShardDataset(url, cache_dir=str(tmp_path / "cache"))
    assert ds.num_samples == m["num_sequences"]


# the corpus is exactly what its manifest lists (issue 20: stray, corrupt and unlisted parts)


def copy_corpus(inputs, tmp_path):
    import shutil

    return shutil.copytree(inputs[0], tmp_path / "clean")


def flip_a_bit_that_still_decodes(path):
    """Flip one bit of a zstd part so that it still decompresses to JSON lines: the damage only
    a checksum can see."""
    import zstandard

    def decompress(data: bytes) -> bytes:
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)

    data = path.read_bytes()
    original = decompress(data)
    for i in range(len(data) // 2, len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x01
        try:
            text = decompress(bytes(flipped))
            rows = [json.loads(line) for line in text.splitlines()]
        except (zstandard.ZstdError, ValueError):
            continue
        if text != original and all(isinstance(r, dict) and r.get("lang") for r in rows):
            path.write_bytes(bytes(flipped))
            return
    raise AssertionError(f"no bit of {path} flips into valid JSON lines")


def test_a_stray_part_file_is_refused_not_consumed(inputs, tmp_path):
    corpus = copy_corpus(inputs, tmp_path)
    stray = corpus / "de" / "part-00007-of-00009.jsonl.zst"
    stray.write_bytes((corpus / "de" / "part-00000-of-00002.jsonl.zst").read_bytes())
    with pytest.raises(ValueError, match=rf"{stray}: .*not listed in {corpus}/manifest.json"):
        run(config((str(corpus), inputs[1]), tmp_path / "out"))
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_a_missing_part_file_is_refused_by_name(inputs, tmp_path):
    corpus = copy_corpus(inputs, tmp_path)
    gone = corpus / "sw" / "part-00001-of-00002.jsonl.zst"
    gone.unlink()
    with pytest.raises(FileNotFoundError, match=rf"{gone}: listed in {corpus}/manifest.json"):
        run(config((str(corpus), inputs[1]), tmp_path / "out"))


def test_a_flipped_bit_in_a_part_stops_the_job(inputs, tmp_path):
    corpus = copy_corpus(inputs, tmp_path)
    part = corpus / "en" / "part-00001-of-00002.jsonl.zst"
    flip_a_bit_that_still_decodes(part)
    with pytest.raises(Exception, match=rf"{part}: sha256 [0-9a-f]{{64}} but"):
        run(config((str(corpus), inputs[1]), tmp_path / "out"))
    assert not (tmp_path / "out" / "manifest.json").exists()


def copy_vocab(inputs, tmp_path, model: bytes, *, resign: bool):
    """The vocabulary with spm.model replaced by `model`; resign: its manifest records the new
    sha256 too (a vocabulary whose record matches a broken model: only loading it tells)."""
    import hashlib
    import shutil

    vocab = shutil.copytree(inputs[1], tmp_path / "vocab")
    (vocab / "spm.model").write_bytes(model)
    if resign:
        manifest = json.loads((vocab / "manifest.json").read_text())
        manifest["spm_sha256"] = hashlib.sha256(model).hexdigest()
        (vocab / "manifest.json").write_text(json.dumps(manifest))
    return vocab


@pytest.mark.parametrize("resign", [False, True], ids=["sha256-differs", "sha256-matches"])
def test_a_corrupt_vocabulary_is_refused_before_the_job_in_one_line(inputs, tmp_path, resign):
    model = (Path(inputs[1]) / "spm.model").read_bytes()
    vocab = copy_vocab(inputs, tmp_path, model[: len(model) // 3], resign=resign)
    expected = "not a SentencePiece model" if resign else "has sha256 [0-9a-f]{64}, its manifest"
    with pytest.raises(ValueError, match=rf"^{vocab}/spm.model:? {expected}"):
        run(config((inputs[0], str(vocab)), tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # refused before anything was written
    args = ["shard", "--corpus", inputs[0], "--vocab", vocab, "--output", tmp_path / "out"]
    out = subprocess.run(
        [sys.executable, "-m", "mdeberta", *map(str, args)], capture_output=True, text=True
    )
    assert out.returncode == 1 and out.stderr.startswith(f"mdeberta: error: {vocab}/spm.model")
    assert len(out.stderr.splitlines()) == 1, out.stderr


CYRILLIC = "абвгдежзиклмнопрстуфхцчшщыэюя"


def test_a_vocabulary_of_other_languages_is_reported_on_a_russian_corpus(tmp_path, caplog):
    rng = random.Random(5)
    ru = [
        {"id": f"ru-{i:04d}", "lang": "ru", "text": words(rng, CYRILLIC, rng.randint(20, 40))}
        for i in range(60)
    ]
    corpus = write_corpus(tmp_path / "clean", {"ru": ru})
    latin = corpus_docs()
    lines = [p for d in latin["en"] + latin["de"] for p in d["text"].split("\n")]
    vocab = tmp_path / "vocab"
    write_tiny_vocab(vocab, lines, 320, byte_fallback=True, sample_languages=["de", "en"])
    cfg = config((corpus, str(vocab)), tmp_path / "out")
    with caplog.at_level("WARNING"):
        run(cfg)
    warning = caplog.text
    assert "ru: not among the languages it was trained on (de, en)" in warning, warning
    rate = re.search(r"ru: byte-fallback pieces are (\d+\.\d)% of its ids", warning)
    assert rate and float(rate[1]) > 50, warning  # Cyrillic spelled byte by byte
    strict = dataclasses.replace(cfg, output=str(tmp_path / "strict"), strict=True)
    with pytest.raises(ValueError, match=r"ru: byte-fallback pieces are .* \(strict: refused\)"):
        run(strict)
    assert not (tmp_path / "strict" / "manifest.json").exists()


def test_golden_shards_of_main(job):
    """The shard bytes of this module's job are those of the code before the clean corpus got one
    module (computed on main at 72815f5): the refactoring changed no byte."""
    _, m = job
    assert m["vocab"]["sha256"] == (
        "3bec8e043f86fb9dae51b0eb95937f911edd66c6ff8a5cc4d9cf34ca78f3c616"
    ), "SentencePiece trains another tiny vocabulary: the golden shards below no longer apply"
    assert [s["sha256"][:16] for s in m["shards"]] == GOLDEN_SHARDS


GOLDEN_SHARDS = [
    "8879dd6ee6d6da72", "93aa530e7b088b42", "2a601f0df03c6827", "3ed82b3cde78d05e",
    "1f22093be9d8880f", "51fb0ef2de2579db", "f500a171e8d78605", "faa7805855f57141",
    "f3975a58b3251f85", "4f32f2928769dd5e", "8ffb9e8f646bb533", "94901963797906c8",
    "b68e89021d5aad60", "d082011cbe7cf02c", "db95cc6455a686dc", "8ed907268e0f668a",
    "58393f6bb8402511", "a8a67b248fc2899f", "131b4423eab8b9fa", "04095c413cec7d35",
    "83509850303ccf46", "186cba28e77e5fa8", "10eab3f40569e585", "22d289d4adcef7e7",
    "5016fc264ed325be",
]  # fmt: skip
