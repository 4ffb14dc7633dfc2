import hashlib
import json
import re
from pathlib import Path

import pytest
import sentencepiece as spm

from mdeberta.manifest import IncompleteArtifactError, read_manifest
from mdeberta.vocab.build import build_vocab
from mdeberta.vocab.config import VocabConfig
from tests.vocab.corpus import MAX_SENTENCE_BYTES, VOCAB_SIZE, write_clean_corpus


def test_directory_has_every_file(built_vocab):
    out, _ = built_vocab
    names = {p.name for p in Path(out).iterdir()}
    expected = {"spm.model", "spm.vocab", "tokenizer.json", "tokenizer_config.json"}
    expected |= {"special_tokens_map.json", "report.json", "report.md", "manifest.json", "sample"}
    assert names == expected


def test_manifest_records_the_vocabulary(built_vocab):
    out, summary = built_vocab
    m = read_manifest(out, kind="vocabulary")
    model = Path(out, "spm.model").read_bytes()
    assert m["spm_sha256"] == hashlib.sha256(model).hexdigest() == summary["spm_sha256"]
    assert m["vocab_size"] == VOCAB_SIZE + 1
    assert m["special_ids"] == {"pad": 0, "cls": 1, "sep": 2, "unk": 3, "mask": VOCAB_SIZE}
    assert m["files"]["spm.model"]["sha256"] == m["spm_sha256"]
    assert set(m["inputs"]) == {"corpus"}


def test_manifest_records_the_full_trainer_spec(built_vocab):
    spec = read_manifest(built_vocab[0])["trainer_spec"]
    assert spec["model_type"] == "UNIGRAM"
    assert spec["vocab_size"] == VOCAB_SIZE
    assert spec["byte_fallback"] and spec["split_digits"]
    assert spec["character_coverage"] == pytest.approx(0.9999)
    assert spec["max_sentence_length"] == MAX_SENTENCE_BYTES
    assert (spec["pad_piece"], spec["bos_piece"], spec["eos_piece"]) == ("[PAD]", "[CLS]", "[SEP]")
    assert "seed_sentencepiece_size" in spec and "shrinking_factor" in spec  # defaults too
    assert spec["input"] and all("/" not in name for name in spec["input"])  # no machine paths


def test_sampling_plan_and_passes_are_recorded(built_vocab):
    m = read_manifest(built_vocab[0])
    plan = m["sampling"]
    assert plan["alpha"] == 0.3 and plan["target"] == 1500
    langs = plan["languages"]
    assert set(langs) == {"en", "ru", "zh-Hans", "sw"}
    assert langs["sw"]["capped"] and langs["sw"]["passes"] == 3
    assert langs["en"]["q"] < langs["en"]["p"]  # α < 1 moves mass to the small languages
    drawn = m["sample"]["languages"]
    assert sum(v["paragraphs"] for v in drawn.values()) == pytest.approx(1500, rel=0.15)


def test_long_paragraphs_are_split_and_counted(built_vocab):
    out, _ = built_vocab
    drawn = read_manifest(out)["sample"]["languages"]
    assert sum(v.get("split_paragraphs", 0) for v in drawn.values()) > 0
    lines = [x for f in Path(out, "sample").glob("part-*.txt") for x in f.read_text().splitlines()]
    assert max(len(x.encode()) for x in lines) <= MAX_SENTENCE_BYTES
    assert len(lines) == read_manifest(out)["sample"]["totals"]["lines"]


def test_model_is_unigram_with_byte_fallback(built_vocab):
    sp = spm.SentencePieceProcessor(model_file=str(Path(built_vocab[0], "spm.model")))
    assert sp.get_piece_size() == VOCAB_SIZE
    assert [sp.id_to_piece(i) for i in range(4)] == ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]
    assert sum(sp.is_byte(i) for i in range(VOCAB_SIZE)) == 256
    assert sp.encode("2024", out_type=str)[-4:] == ["2", "0", "2", "4"]  # split_digits
    assert sp.encode("ᚠ", out_type=str) == ["▁", "<0xE1>", "<0x9A>", "<0xA0>"]


def _config(corpus, out, **kw):
    defaults = {"vocab_size": 300, "sentences": 300, "report_paragraphs": 5, "num_threads": 1}
    return VocabConfig(corpus=corpus, output=str(out), **{**defaults, **kw})


def test_vocab_too_large_is_a_clear_error_before_training(clean_corpus, tmp_path):
    with pytest.raises(ValueError, match=r"too large for this text.*at most [\d,]+ pieces"):
        build_vocab(_config(clean_corpus, tmp_path / "v", vocab_size=50_000))
    assert not (tmp_path / "v" / "manifest.json").exists()
    assert not (tmp_path / "v").exists()  # no sample/ left behind: nothing that looks like work


def test_a_refused_build_keeps_the_sample_only_when_asked_and_says_so(
    clean_corpus, tmp_path, capsys
):
    with pytest.raises(ValueError, match=r"too large for this text"):
        build_vocab(_config(clean_corpus, tmp_path / "v", vocab_size=50_000, keep_sample=True))
    assert [p.name for p in (tmp_path / "v").iterdir()] == ["sample"]
    assert f"kept the sample in {tmp_path / 'v' / 'sample'}" in capsys.readouterr().err


def test_missing_stats_is_a_clear_error(tmp_path, corpus_docs):
    corpus = write_clean_corpus(tmp_path / "c", {"en": corpus_docs["en"][:5]})
    (tmp_path / "c" / "stats.json").unlink()
    with pytest.raises(FileNotFoundError, match="stats.json not found"):
        build_vocab(_config(corpus, tmp_path / "v"))


def test_missing_manifest_is_a_clear_error(tmp_path, corpus_docs):
    corpus = write_clean_corpus(tmp_path / "c", {"en": corpus_docs["en"][:5]})
    (tmp_path / "c" / "manifest.json").unlink()
    with pytest.raises(IncompleteArtifactError, match="incomplete"):
        build_vocab(_config(corpus, tmp_path / "v"))


def test_empty_corpus_is_a_clear_error(tmp_path):
    corpus = write_clean_corpus(tmp_path / "c", {"en": []})
    with pytest.raises(ValueError, match="no text"):
        build_vocab(_config(corpus, tmp_path / "v"))


def test_unreadable_input_names_the_file(tmp_path, corpus_docs):
    corpus = write_clean_corpus(tmp_path / "c", {"en": corpus_docs["en"][:10]}, parts=1)
    part = tmp_path / "c" / "en" / "part-00000-of-00001.jsonl.zst"
    part.write_bytes(b"not a zstd frame" * 8)
    with pytest.raises(Exception, match="part-00000-of-00001.jsonl.zst: unreadable"):
        build_vocab(_config(corpus, tmp_path / "v"))


def test_summary_printed_by_the_command(built_vocab):
    _, summary = built_vocab
    assert summary["vocab_size"] == VOCAB_SIZE + 1
    assert "sw" in summary["capped_languages"]
    assert json.dumps(summary)


def test_sample_is_identical_whatever_the_number_of_workers(clean_corpus, tmp_path):
    from mdeberta.clean_corpus import read_stats
    from mdeberta.pipelines.sample_vocab import run_sample, vocab_sampling_plan

    stats = read_stats(clean_corpus)
    plan = vocab_sampling_plan(stats, alpha=0.3, sentences=400, max_passes=3)
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        run_sample(
            clean_corpus,
            str(out),
            plan,
            seed=7,
            stats=stats,
            max_sentence_bytes=512,
            workers=workers,
        )
        outputs.append({p.name: p.read_bytes() for p in out.iterdir()})
    assert outputs[0] == outputs[1]
    assert any(name.startswith("part-") for name in outputs[0])


def test_sampling_job_runs_alone(clean_corpus, tmp_path):
    from mdeberta.pipelines.sample_vocab import sample_job

    job = dict(alpha=0.3, sentences=200, max_passes=10.0, seed=12345, max_sentence_bytes=8192)
    totals = sample_job(clean_corpus, str(tmp_path), **job)["totals"]
    assert totals["paragraphs"] == pytest.approx(200, rel=0.25)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["plan"]["target"] == 200 and stats["totals"] == totals


def test_rebuild_replaces_an_old_directory(clean_corpus, tmp_path):
    out = tmp_path / "v"
    (out / "sample").mkdir(parents=True)
    (out / "sample" / "part-00007-of-00009.txt").write_text("stale line\n")
    (out / "manifest.json").write_text('{"kind": "vocabulary", "stale": true}')
    cfg = _config(clean_corpus, out, vocab_size=450, sentences=800, keep_sample=True)
    manifest = build_vocab(cfg)
    assert "stale" not in read_manifest(str(out)) and manifest["vocab_size"] == 451
    assert not (out / "sample" / "part-00007-of-00009.txt").exists()


# the corpus is exactly what its manifest lists (issue 20)


def test_a_stray_part_file_is_refused_not_sampled(tmp_path, corpus_docs):
    corpus = write_clean_corpus(tmp_path / "c", {"en": corpus_docs["en"][:20]})
    stray = tmp_path / "c" / "en" / "part-00005-of-00009.jsonl.zst"
    stray.write_bytes((tmp_path / "c" / "en" / "part-00000-of-00002.jsonl.zst").read_bytes())
    with pytest.raises(ValueError, match=rf"{stray}: .*not listed in {corpus}/manifest.json"):
        build_vocab(_config(corpus, tmp_path / "v"))
    assert not (tmp_path / "v" / "manifest.json").exists()


def test_a_flipped_bit_in_a_part_stops_the_build(tmp_path, corpus_docs):
    from tests.pipelines.test_shard import flip_a_bit_that_still_decodes

    corpus = write_clean_corpus(tmp_path / "c", {"en": corpus_docs["en"][:40]}, parts=1)
    part = tmp_path / "c" / "en" / "part-00000-of-00001.jsonl.zst"
    flip_a_bit_that_still_decodes(part)
    with pytest.raises(Exception, match=rf"{part}: sha256 [0-9a-f]{{64}} but"):
        build_vocab(_config(corpus, tmp_path / "v"))
    assert not (tmp_path / "v" / "manifest.json").exists()


def test_a_language_the_vocabulary_fits_badly_is_reported(tmp_path, corpus_docs, caplog):
    corpus = write_clean_corpus(tmp_path / "c", {k: corpus_docs[k] for k in ("en", "zh-Hans")})
    # a coverage of 98% leaves the rarest characters, most of them Han, to byte fallback
    fit = {"vocab_size": 400, "character_coverage": 0.98}  # max_byte_fallback: 5%
    with caplog.at_level("WARNING"):
        build_vocab(_config(corpus, tmp_path / "v", **fit))
    assert re.search(r"zh-Hans: byte-fallback pieces are \d+\.\d% of its ids", caplog.text)
    assert "en: byte-fallback" not in caplog.text, caplog.text
    with pytest.raises(ValueError, match=r"zh-Hans: byte-fallback .* \(strict: refused\)"):
        build_vocab(_config(corpus, tmp_path / "s", **fit, strict=True))
    assert not (tmp_path / "s" / "manifest.json").exists()
    assert not (tmp_path / "s").exists()  # the refused vocabulary's files and sample removed
