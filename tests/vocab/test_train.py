import logging

import pytest

from mdeberta.vocab.config import VocabConfig
from mdeberta.vocab.train import (
    BYTES_PER_SENTENCE,
    TEXT_BYTES_PER_CHAR,
    MemoryLimitError,
    VocabSizeError,
    VocabTooSmallError,
    check_vocab_size,
    estimate_memory,
    feasible_vocab_bound,
    plan_memory,
    train_spm,
    trainer_spec,
)

ENGLISH = [f"hello world this is a test number {i}" for i in range(200)]


def test_memory_estimate_is_twenty_bytes_per_character_plus_the_text():
    estimate, large = estimate_memory(chars=1_000_000, sentences=10_000)
    assert not large
    text = 1_000_000 * TEXT_BYTES_PER_CHAR + 10_000 * BYTES_PER_SENTENCE
    assert estimate == 1_010_000 * 20 + text


def test_extremely_large_corpus_above_int32_characters():
    _, large = estimate_memory(chars=2_100_000_000, sentences=100_000_000)
    assert large  # 2.2e9 > INT32_MAX positions with one separator per sentence
    estimate, large = estimate_memory(chars=2_000_000_000, sentences=10)
    assert not large and estimate < 2_000_000_000 * (20 + TEXT_BYTES_PER_CHAR + 1)
    estimate, large = estimate_memory(chars=2_200_000_000, sentences=10)
    assert large and estimate > 2_200_000_000 * 36


def test_sample_too_big_for_memory_is_lowered_with_a_warning(caplog):
    cfg = VocabConfig(memory_limit_gb=1.0)
    with caplog.at_level(logging.WARNING):
        plan = plan_memory(cfg, chars=200_000_000, sentences=1_000_000)
    assert 0 < plan.input_sentence_size < 1_000_000
    assert plan.estimate_bytes <= plan.limit_bytes == 2**30
    assert "random" in caplog.text and "1,000,000" in caplog.text


def test_sample_that_fits_is_kept_whole():
    plan = plan_memory(VocabConfig(memory_limit_gb=1.0), chars=1_000_000, sentences=5_000)
    assert plan.input_sentence_size == 0 and not plan.extremely_large


def test_sample_too_big_for_memory_can_be_refused():
    cfg = VocabConfig(memory_limit_gb=1.0, on_memory_exceeded="error")
    with pytest.raises(MemoryLimitError, match=r"about 4\.\d GB.*more than the 1\.0 GB"):
        plan_memory(cfg, chars=150_000_000, sentences=1_000_000)


def test_feasible_bound_counts_repeated_substrings():
    cfg = VocabConfig(vocab_size=300)
    # 4 special + 256 bytes + chars {a, b, space} + "▁a", "▁ab", "ab" (each seen 3 times)
    assert feasible_vocab_bound(["ab ab", "ab"], cfg, stop_above=10_000) == 266
    assert feasible_vocab_bound(["ab ab", "ab"], cfg, stop_above=265) is None


def test_vocab_too_large_fails_before_training():
    with pytest.raises(VocabSizeError, match=r"vocab_size 5,000 is too large.*at most \d+"):
        check_vocab_size(iter(ENGLISH), VocabConfig(vocab_size=5_000))
    check_vocab_size(iter(ENGLISH), VocabConfig(vocab_size=300))  # within the bound


def test_sentencepiece_size_error_becomes_ours_with_the_exact_size():
    cfg = VocabConfig(vocab_size=400, num_threads=1)
    with pytest.raises(VocabSizeError, match=r"can build \d+ pieces") as err:
        train_spm(iter(ENGLISH), cfg, plan_memory(cfg, 7_000, 200))
    assert 260 < err.value.largest < 400


def test_vocab_smaller_than_the_characters_is_a_clear_error():
    text = ["".join(chr(0x4E00 + i) for i in range(k, k + 40)) for k in range(0, 4000, 40)] * 2
    cfg = VocabConfig(vocab_size=300, num_threads=1)
    with pytest.raises(VocabTooSmallError, match=r"too small.*needs [\d,]+ single-character"):
        train_spm(iter(text), cfg, plan_memory(cfg, 8_000, 200))


def test_trainer_spec_has_mdeberta_specials_and_all_threads():
    spec = trainer_spec(VocabConfig(num_threads=0))
    assert (spec["pad_id"], spec["bos_id"], spec["eos_id"], spec["unk_id"]) == (0, 1, 2, 3)
    assert spec["unk_piece"] == "[UNK]" and spec["model_type"] == "unigram"
    assert spec["num_threads"] >= 1 and spec["byte_fallback"] and spec["split_digits"]


def test_training_is_deterministic_for_a_seed():
    cfg = VocabConfig(vocab_size=286, num_threads=1)
    memory = plan_memory(cfg, 7_000, 200)
    first, _ = train_spm(iter(ENGLISH), cfg, memory)
    again, _ = train_spm(iter(ENGLISH), cfg, memory)
    assert first == again
