import json
from pathlib import Path

import apache_beam  # noqa: F401 - trap (c): Beam's protobuf runtime must let transformers read spm.model
import pytest
import sentencepiece as spm

from mdeberta.vocab.tokenizer import load_model_proto, tokenizer_json
from tests.vocab.corpus import RARE, VOCAB_SIZE

EDGE_CASES = [
    "ｆｕｌｌ　ｗｉｄｔｈ ＡＢＣ １２３",  # NFKC folds full-width forms
    "  leading, trailing and  double  spaces  ",
    f"{RARE} emoji 😀 and 𝔘𝔙: byte fallback",
    "ﬁ ligature, ① circled, ㎏ squared",
    "tab\tand\u00a0no-break\u3000ideographic space",
    "Ka to 2024 ри 31415 嚇乊",
    "",
]


@pytest.fixture(scope="module")
def tokenizers_(built_vocab):
    from transformers import AutoTokenizer

    out, _ = built_vocab
    return {
        "slow": AutoTokenizer.from_pretrained(out, use_fast=False),
        "fast": AutoTokenizer.from_pretrained(out, use_fast=True),
    }


@pytest.fixture(scope="module")
def sp(built_vocab):
    return spm.SentencePieceProcessor(model_file=str(Path(built_vocab[0], "spm.model")))


def _paragraphs(corpus_docs):
    return [p for docs in corpus_docs.values() for d in docs for p in d["text"].split("\n")]


@pytest.mark.parametrize("kind", ["slow", "fast"])
def test_special_ids(tokenizers_, kind):
    tok = tokenizers_[kind]
    assert len(tok) == VOCAB_SIZE + 1
    ids = [tok.pad_token_id, tok.cls_token_id, tok.sep_token_id, tok.unk_token_id]
    assert ids == [0, 1, 2, 3]
    assert tok.mask_token_id == VOCAB_SIZE
    assert tok.convert_ids_to_tokens([0, 1, 2, 3, VOCAB_SIZE]) == [
        "[PAD]",
        "[CLS]",
        "[SEP]",
        "[UNK]",
        "[MASK]",
    ]


def _is_tie(sp, a: list[int], b: list[int]) -> bool:
    """Same pieces in another order, with the same total score: an exact tie of two best paths
    that SentencePiece (float32 sums) and tokenizers (float64 sums) may break differently."""
    score = lambda ids: sum(sp.get_score(i) for i in ids)  # noqa: E731
    return sorted(a) == sorted(b) and score(a) == pytest.approx(score(b), abs=1e-4)


@pytest.mark.parametrize("kind", ["slow", "fast"])
def test_ids_equal_sentencepiece_on_every_paragraph(tokenizers_, sp, corpus_docs, kind):
    texts = _paragraphs(corpus_docs) + EDGE_CASES
    ours = tokenizers_[kind](texts, add_special_tokens=False)["input_ids"]
    differ = [(t, ids) for t, ids in zip(texts, ours, strict=True) if ids != sp.encode(t)]
    # the synthetic Han text repeats whole words back to back, so exact ties happen
    assert [t for t, ids in differ if not _is_tie(sp, ids, sp.encode(t))] == []
    assert len(differ) <= 0.01 * len(texts)


@pytest.fixture(scope="module")
def sample_corpus_vocab(tmp_path_factory):
    """A vocabulary trained on the packaged sample corpus (every language), with its text."""
    import lzma

    from mdeberta import resources_path
    from mdeberta.vocab.config import VocabConfig
    from mdeberta.vocab.tokenizer import write_tokenizer_files
    from mdeberta.vocab.train import plan_memory, train_spm

    texts = {}
    for path in sorted(resources_path("sample").glob("*.txt.xz")):
        lines = lzma.decompress(path.read_bytes()).decode().split("\n")
        texts[path.name.removesuffix(".txt.xz")] = [x for x in lines if x.strip()]
    every = [p for paragraphs in texts.values() for p in paragraphs]
    cfg = VocabConfig(vocab_size=4000, num_threads=2)
    model, _ = train_spm(iter(every), cfg, plan_memory(cfg, sum(map(len, every)), len(every)))
    out = tmp_path_factory.mktemp("sample_vocab")
    (out / "spm.model").write_bytes(model)
    write_tokenizer_files(str(out), model)
    return out, texts


@pytest.mark.parametrize("use_fast", [False, True])
def test_ids_equal_sentencepiece_on_the_sample_corpus(sample_corpus_vocab, use_fast):
    from transformers import AutoTokenizer

    out, texts = sample_corpus_vocab
    assert len(texts) >= 20
    sp = spm.SentencePieceProcessor(model_file=str(out / "spm.model"))
    tok = AutoTokenizer.from_pretrained(str(out), use_fast=use_fast)
    for lang, paragraphs in texts.items():
        ours = tok(paragraphs, add_special_tokens=False)["input_ids"]
        assert ours == [sp.encode(p) for p in paragraphs], lang


def test_byte_fallback_is_not_unknown(tokenizers_, sp):
    ids = tokenizers_["fast"](RARE, add_special_tokens=False)["input_ids"]
    assert ids == sp.encode(RARE)
    assert len(ids) == 4 and all(sp.is_byte(i) for i in ids[1:])


def test_pairs_and_masks_use_deberta_layout(tokenizers_):
    tok = tokenizers_["fast"]
    enc = tok("ka to", "ri ne")
    ids = enc["input_ids"]
    assert ids[0] == 1 and ids[-1] == 2 and ids.count(2) == 2
    assert enc["token_type_ids"][-1] == 1
    masked = tok("ka [MASK] ne", add_special_tokens=False)["input_ids"]
    assert VOCAB_SIZE in masked


def test_decode_round_trips(tokenizers_, sp):
    tok = tokenizers_["fast"]
    text = f"Ka to 2024 ри {RARE} 嚇乊"
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    folded = "ｆｕｌｌ ﬁ"  # NFKC: both libraries decode the normalized text
    assert tok.decode(tok(folded)["input_ids"], skip_special_tokens=True) == sp.decode(
        sp.encode(folded)
    )


def test_tokenizer_files(built_vocab):
    out, _ = built_vocab
    config = json.loads(Path(out, "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert config["mask_token"] == "[MASK]" and config["added_tokens_decoder"][str(VOCAB_SIZE)]
    tok = json.loads(Path(out, "tokenizer.json").read_text())
    assert tok["model"]["type"] == "Unigram" and tok["model"]["byte_fallback"] is True
    assert tok["normalizer"]["normalizers"][0]["type"] == "Precompiled"
    assert len(tok["model"]["vocab"]) == VOCAB_SIZE + 1
    special = json.loads(Path(out, "special_tokens_map.json").read_text())
    assert special["cls_token"] == "[CLS]" and special["sep_token"] == "[SEP]"


def test_wrong_special_pieces_are_refused(built_vocab):
    proto = load_model_proto(Path(built_vocab[0], "spm.model").read_bytes())
    proto.pieces[1].piece = "<s>"
    with pytest.raises(ValueError, match=r"pieces 0\.\.3"):
        tokenizer_json(proto)


def test_model_directory_with_a_deberta_v2_config_keeps_our_tokenizer(built_vocab, sp, tmp_path):
    """Exported model dirs hold config.json (model_type deberta-v2) beside these files; the
    tokenizer_class we write keeps transformers from rebuilding a DebertaV2Tokenizer backend
    (byte fallback off, NFC) from the vocabulary."""
    import shutil

    from transformers import AutoTokenizer, DebertaV2Config

    for name in ("spm.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(Path(built_vocab[0], name), tmp_path / name)
    DebertaV2Config(vocab_size=VOCAB_SIZE + 1).save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    for text in EDGE_CASES:
        assert tok(text, add_special_tokens=False)["input_ids"] == sp.encode(text), text
