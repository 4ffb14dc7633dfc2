"""`mdeberta extend-vocab`: every base id kept, new pieces after [MASK], files that agree."""

import hashlib
import json
from pathlib import Path

import pytest
import sentencepiece as spm

from mdeberta.clean_corpus import list_parts
from mdeberta.manifest import read_manifest, verify_files
from mdeberta.vocab.extend import extend_vocab
from mdeberta.vocab.extend_config import ExtendVocabConfig
from mdeberta.vocab.extend_pieces import (
    CONTROL,
    NORMAL,
    base_segmentations,
    extended_model,
    new_pieces,
    placed_scores,
)
from mdeberta.vocab.report import report_paragraphs
from mdeberta.vocab.tokenizer import MASK, load_model_proto, mask_id, num_ids
from tests.vocab import new_languages
from tests.vocab.corpus import VOCAB_SIZE, write_clean_corpus

ADD = 160
QUICK = ["--sentences", "2000", "--set", "num_threads=1", "--set", "report_paragraphs=200"]


@pytest.fixture(scope="module")
def new_corpus(tmp_path_factory) -> str:
    docs = {lang: new_languages.docs(lang, 60) for lang in ("am", "sw")}
    return write_clean_corpus(tmp_path_factory.mktemp("clean-new"), docs)


@pytest.fixture(scope="module")
def extended(tmp_path_factory, built_vocab, new_corpus, clean_corpus):
    """built_vocab (byte fallback, en ru zh-Hans sw) extended through the command line."""
    from typer.testing import CliRunner

    from mdeberta.cli import app

    out = str(tmp_path_factory.mktemp("extended"))
    args = ["extend-vocab", "--base", built_vocab[0], "--corpus", new_corpus, "--output", out]
    args += ["--add", str(ADD), "--check-corpus", clean_corpus, *QUICK]
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise RuntimeError(f"extend-vocab failed:\n{result.output}") from result.exception
    return out, json.loads(result.stdout)


def _proto(folder) -> object:
    return load_model_proto(Path(folder, "spm.model").read_bytes())


def _sp(folder):
    return spm.SentencePieceProcessor(model_file=str(Path(folder, "spm.model")))


def _lines(corpus: str, limit: int = 200) -> dict[str, list[str]]:
    by_lang: dict[str, list] = {}
    for part in list_parts(corpus):
        by_lang.setdefault(part.lang, []).append(part)
    return {k: list(report_paragraphs(parts, limit)) for k, parts in by_lang.items()}


def test_every_base_id_is_kept_and_new_pieces_follow_mask(built_vocab, extended):
    base, ext = _proto(built_vocab[0]), _proto(extended[0])
    assert len(ext.pieces) == VOCAB_SIZE + 1 + ADD
    for i, piece in enumerate(base.pieces):
        got = ext.pieces[i]
        assert (got.piece, got.score, got.type) == (piece.piece, piece.score, piece.type), i
    assert mask_id(ext) == VOCAB_SIZE and ext.pieces[VOCAB_SIZE].piece == MASK
    assert ext.pieces[VOCAB_SIZE].type == CONTROL  # SentencePiece never produces it from text
    old = {p.piece for p in base.pieces}
    new = ext.pieces[VOCAB_SIZE + 1 :]
    assert all(p.type == NORMAL and p.piece not in old for p in new)
    chars = [p.score for p in new if len(p.piece) == 1]
    longer = [p.score for p in new if len(p.piece) > 1]
    assert len(chars) >= 75 and all(len(p.piece) == 1 for p in new[: len(chars)])  # chars first
    assert chars == sorted(chars, reverse=True) and longer == sorted(longer, reverse=True)
    normal = [p.score for p in base.pieces if p.type == NORMAL]
    assert min(normal) <= min(chars + longer) and max(chars + longer) <= max(normal)
    summary = extended[1]
    assert summary["first_new_id"] == VOCAB_SIZE + 1 and summary["added"] == ADD
    assert summary["vocab_size"] == VOCAB_SIZE + 1 + ADD


def test_tokenizer_files_keep_base_ids_and_agree_with_sentencepiece(
    built_vocab, extended, new_corpus, clean_corpus
):
    from transformers import AutoTokenizer

    base = json.loads(Path(built_vocab[0], "tokenizer.json").read_text())
    ext = json.loads(Path(extended[0], "tokenizer.json").read_text())
    assert ext["model"]["vocab"][: VOCAB_SIZE + 1] == base["model"]["vocab"]
    assert ext["added_tokens"] == base["added_tokens"]  # [PAD] [CLS] [SEP] [UNK] [MASK], same ids
    tok = AutoTokenizer.from_pretrained(extended[0])
    sp = _sp(extended[0])
    assert len(tok) == VOCAB_SIZE + 1 + ADD and tok.mask_token_id == VOCAB_SIZE
    lines = [x for c in (new_corpus, clean_corpus) for v in _lines(c, 60).values() for x in v]
    for line in lines:
        assert tok(line)["input_ids"] == [1, *sp.encode(line), 2], line


def test_fertility_drops_and_base_lines_without_new_pieces_are_unchanged(
    built_vocab, extended, clean_corpus
):
    report = json.loads(Path(extended[0], "report.json").read_text())
    for lang in ("am", "sw"):
        row = report["languages"]["new"][lang]
        assert row["pieces_per_unit_change"] <= -0.3, (lang, row)
    am = report["languages"]["new"]["am"]
    assert am["before"]["byte_fallback_rate"] > 0.5 and am["after"]["byte_fallback_rate"] == 0
    check = report["languages"]["check"]
    assert set(check) == {"en", "ru", "zh-Hans", "sw"}
    assert all(row["changed_without_new_pieces"] == 0 for row in check.values())
    base, ext = _sp(built_vocab[0]), _sp(extended[0])
    changed = 0
    for lines in _lines(clean_corpus).values():
        for line in lines:
            ids = ext.encode(line)
            if all(i <= VOCAB_SIZE for i in ids):
                assert ids == base.encode(line), line
            else:
                changed += 1
    assert changed  # the Latin-script pieces of Swahili do reach some base lines


def test_manifest_names_the_base_and_checks_every_file(built_vocab, extended):
    out = extended[0]
    m = read_manifest(out, kind="vocabulary")
    model = Path(out, "spm.model").read_bytes()
    base_sha = read_manifest(built_vocab[0])["spm_sha256"]
    assert m["spm_sha256"] == hashlib.sha256(model).hexdigest()
    assert m["extension"]["base"]["spm_sha256"] == base_sha
    assert m["extension"]["base"]["vocab_size"] == VOCAB_SIZE + 1
    assert m["vocab_size"] == VOCAB_SIZE + 1 + ADD
    assert m["special_ids"] == read_manifest(built_vocab[0])["special_ids"]
    assert set(m["inputs"]) == {"corpus", "check_corpus", "base"}
    verify_files(out, m["files"])
    assert "extension.json" in m["files"] and "tokenizer.json" in m["files"]
    # the languages shard checks a corpus against: the base's and the new ones
    assert set(m["sample"]["languages"]) == {"en", "ru", "zh-Hans", "sw", "am"}
    assert not Path(out, "sample").exists()


def test_extension_json_holds_each_piece_with_its_base_segmentation(built_vocab, extended):
    body = json.loads(Path(extended[0], "extension.json").read_text())
    base, ext = _sp(built_vocab[0]), _sp(extended[0])
    assert [p["id"] for p in body["pieces"]] == list(range(VOCAB_SIZE + 1, VOCAB_SIZE + 1 + ADD))
    for row in body["pieces"]:
        assert ext.id_to_piece(row["id"]) == row["piece"]
        assert row["base_ids"] and all(i < VOCAB_SIZE for i in row["base_ids"])
        pieces = [base.id_to_piece(i) for i in row["base_ids"]]
        if any(base.is_byte(i) for i in row["base_ids"]):  # spelt byte by byte
            raw = b"".join(
                bytes([int(p[3:5], 16)]) if base.is_byte(i) else p.encode()
                for i, p in zip(row["base_ids"], pieces, strict=True)
            )
            assert raw.decode() == row["piece"]
        else:
            assert "".join(pieces) == row["piece"]


def test_an_extension_of_an_extension_keeps_every_id(extended):
    ext = _proto(extended[0])
    more = load_model_proto(extended_model(ext, [("▁zzzqx", -12.0)]))
    assert mask_id(more) == VOCAB_SIZE  # [MASK] stays where it is, never added twice
    assert [p.piece for p in more.pieces[: len(ext.pieces)]] == [p.piece for p in ext.pieces]
    assert num_ids(more) == num_ids(ext) + 1 and more.pieces[-1].piece == "▁zzzqx"


def test_scores_are_placed_on_the_base_scale(built_vocab):
    base = _proto(built_vocab[0])
    candidates = type(base)()
    candidates.CopyFrom(base)
    for p in candidates.pieces:  # a model of the same text whose log-probs sit 3 nats higher
        p.score += 3.0
    candidates.pieces.add(piece="▁novel", score=-1.0, type=NORMAL)
    chosen = new_pieces(candidates, base)
    assert chosen == [("▁novel", -1.0)]
    placed, offset = placed_scores(chosen, candidates, base)
    assert offset == pytest.approx(-3.0)
    top = max(p.score for p in base.pieces if p.type == NORMAL)
    assert placed == [("▁novel", pytest.approx(min(top, -4.0)))]
    assert base_segmentations(base, ["▁novel"])[0]  # some base pieces spell it


def test_more_pieces_than_the_corpus_supplies_is_a_clear_error(built_vocab, new_corpus, tmp_path):
    cfg = ExtendVocabConfig(
        base=built_vocab[0],
        corpus=new_corpus,
        output=str(tmp_path / "out"),
        add=5000,
        candidates=64,
        sentences=500,
        num_threads=1,
    )
    with pytest.raises(ValueError, match=r"supplies only \d+ pieces .* use --add \d+ or less"):
        extend_vocab(cfg)
    assert not Path(tmp_path / "out" / "manifest.json").exists()


def test_a_base_that_is_not_unigram_is_refused(tmp_path, new_corpus):
    import io

    from tests.tiny_vocab import SPECIALS

    model = io.BytesIO()
    lines = new_languages.paragraphs("sw", 300)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=120,
        model_type="bpe",
        minloglevel=2,
        **SPECIALS,
    )
    (tmp_path / "bpe").mkdir()
    (tmp_path / "bpe" / "spm.model").write_bytes(model.getvalue())
    out = str(tmp_path / "out")
    cfg = ExtendVocabConfig(base=str(tmp_path / "bpe"), corpus=new_corpus, output=out, add=5)
    with pytest.raises(ValueError, match="a BPE SentencePiece model; extend-vocab extends unigram"):
        extend_vocab(cfg)


def test_a_base_without_spm_model_is_refused(tmp_path, new_corpus):
    out = str(tmp_path / "out")
    cfg = ExtendVocabConfig(base=str(tmp_path), corpus=new_corpus, output=out, add=5)
    with pytest.raises(FileNotFoundError, match="spm.model not found: --base must be"):
        extend_vocab(cfg)


def test_add_is_required(new_corpus, built_vocab, tmp_path):
    out = str(tmp_path / "out")
    cfg = ExtendVocabConfig(base=built_vocab[0], corpus=new_corpus, output=out)
    with pytest.raises(ValueError, match="--add must be >= 1"):
        extend_vocab(cfg)


def test_settings_are_documented_and_shared_with_build_vocab():
    from mdeberta.config import ConfigError, field_docs, load_config

    docs = field_docs(ExtendVocabConfig)
    assert all(docs.get(f) for f in ExtendVocabConfig.__dataclass_fields__)
    assert "adapt to" in docs["corpus"]  # its own meaning, not build-vocab's
    cfg = load_config(ExtendVocabConfig, overrides=["alpha=0.5", "add=10"])
    settings = cfg.sample_settings(5000, byte_fallback=False)
    assert (settings.alpha, settings.vocab_size, settings.byte_fallback) == (0.5, 5000, False)
    for bad, message in [("alpha=0", "alpha must be in"), ("candidates=3", "candidates must")]:
        with pytest.raises(ConfigError, match=message):
            load_config(ExtendVocabConfig, overrides=[bad])
