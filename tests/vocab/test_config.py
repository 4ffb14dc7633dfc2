import pytest

from mdeberta.config import ConfigError, field_docs, load_config
from mdeberta.vocab.config import VocabConfig


def test_defaults_follow_xlmr_and_mt5():
    cfg = VocabConfig()
    assert (cfg.vocab_size, cfg.alpha, cfg.byte_fallback, cfg.split_digits) == (
        250_000,
        0.3,
        True,
        True,
    )
    assert cfg.character_coverage >= 0.9999 and cfg.threads >= 1


def test_every_field_is_documented():
    docs = field_docs(VocabConfig)
    missing = [f for f in VocabConfig.__dataclass_fields__ if not docs.get(f)]
    assert missing == []


@pytest.mark.parametrize(
    "override, message",
    [
        ("alpha=0", "alpha must be in"),
        ("vocab_size=3", "vocab_size must be"),
        ("character_coverage=0.5", "character_coverage"),
        ("normalization='nfd'", "normalization must be one of"),
        ("max_sentence_bytes=10", "max_sentence_bytes"),
        ("on_memory_exceeded='swap'", "on_memory_exceeded"),
        ("seed_sentencepiece_size=10", "seed_sentencepiece_size"),
    ],
)
def test_invalid_settings_name_the_valid_range(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(VocabConfig, overrides=[override])


def test_overrides_are_typed():
    cfg = load_config(VocabConfig, overrides=["vocab_size=32000", "languages=en,de"])
    assert cfg.vocab_size == 32000 and cfg.languages == "en,de"
