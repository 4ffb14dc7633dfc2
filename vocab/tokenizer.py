"""The Hugging Face tokenizer files of a vocabulary directory, written from spm.model.

mDeBERTa's ids: [PAD]=0, [CLS]=1, [SEP]=2, [UNK]=3 are SentencePiece's pad/bos/eos/unk pieces,
then the learned pieces (and the 256 byte-fallback pieces), then [MASK] = the number of pieces,
added on top of spm.model (as mDeBERTa's own [MASK] = 250101). An extended vocabulary
(vocab/extend.py) keeps every base id: its spm.model holds [MASK] as a control piece at the base's
[MASK] id, and the new pieces follow it, so SentencePiece and the tokenizer files give the same ids.

tokenizer.json is built here, not converted by transformers: transformers 5's DebertaV2Tokenizer
rebuilds its backend from the vocabulary with byte fallback off and an NFC normalizer instead of the
model's NFKC charsmap, so byte-fallback pieces become [UNK] and NFKC-sensitive text gets other ids.
We write tokenizers' Unigram with byte_fallback=True, the model's precompiled charsmap, and
SentencePiece's whitespace rules, and set `tokenizer_class` to PreTrainedTokenizerFast so
AutoTokenizer (transformers 4 and 5) loads tokenizer.json exactly as written.

Where the two can still differ (docs/benchmarks.md, build-vocab; none on the sample corpus):
- exact ties: two best segmentations with the same pieces in another order have the same score;
  SentencePiece sums scores in float32, tokenizers in float64, so they may pick different ones;
- tokenizers' Precompiled normalizer works per grapheme cluster and skips the charsmap's
  multi-character rules inside clusters of 6+ bytes (e.g. decomposed Bengali or Telugu vowel
  signs, Hangul jamo), where SentencePiece composes them;
- literal special strings ("[MASK]") are special tokens in transformers, and literal "<0xNN>"
  text can match a byte piece when "<", "x" or the hex digits are themselves outside the
  vocabulary (never in a real multilingual vocabulary).
"""

from __future__ import annotations

import json

from mdeberta import io

PAD, CLS, SEP, UNK, MASK = "[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"
SPECIAL_PIECES = (PAD, CLS, SEP, UNK)  # ids 0..3 inside spm.model
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
# transformers' loader for a tokenizer.json taken as written (TokenizersBackend in v5)
TOKENIZER_CLASS = "PreTrainedTokenizerFast"
MODEL_MAX_LENGTH = 512
_UNUSED_PENALTY = 1000.0
_NORMAL, _BYTE = 1, 6  # ModelProto.SentencePiece.Type


def load_model_proto(spm_model: bytes):
    """The ModelProto of a serialized spm.model."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(spm_model)
    return proto


def load_processor(spm_model: bytes, where: str):
    """A SentencePieceProcessor of a serialized spm.model; a ValueError naming `where` (the file)
    when the bytes are not a model (SentencePiece's own error names no file)."""
    import sentencepiece as spm

    try:
        return spm.SentencePieceProcessor(model_proto=spm_model)
    except RuntimeError as e:
        raise ValueError(f"{where}: not a SentencePiece model ({e})") from None


def special_ids(mask: int) -> dict[str, int]:
    """The special ids recorded in manifests, given [MASK]'s id (`mask_id`: the number of spm
    pieces, unless an extension put [MASK] inside spm.model)."""
    return {"pad": 0, "cls": 1, "sep": 2, "unk": 3, "mask": mask}


def mask_id(proto) -> int:
    """[MASK]'s id: its control piece's in an extended spm.model, else the one after the pieces."""
    return next((i for i, p in enumerate(proto.pieces) if p.piece == MASK), len(proto.pieces))


def num_ids(proto) -> int:
    """The tokenizer's size: every spm piece, and [MASK] when it is not one of them."""
    return len(proto.pieces) + (mask_id(proto) == len(proto.pieces))


def check_special_pieces(proto) -> None:
    """Fail unless pieces 0..3 are [PAD] [CLS] [SEP] [UNK] (how train.py configures the trainer)."""
    found = tuple(proto.pieces[i].piece for i in range(len(SPECIAL_PIECES)))
    if found != SPECIAL_PIECES:
        raise ValueError(f"spm.model pieces 0..3 are {found}, expected {SPECIAL_PIECES}")


def _unigram_vocab(proto) -> list[list]:
    """(piece, score) rows in id order, with [MASK] appended.

    Byte pieces, which text never matches in SentencePiece, get a score far below every normal
    piece, so tokenizers' Viterbi never picks one for literal text such as "<0x41>" while another
    segmentation exists. That lowers tokenizers' unknown-piece score too (min score - 10), which
    cannot change the best path: every path covers an unknown character with one unknown piece.
    The special pieces keep SentencePiece's 0.0 (transformers' DebertaV2Tokenizer finds [UNK] by
    its (piece, 0.0) row); as added tokens they are matched before the model anyway.
    """
    scores = [p.score for p in proto.pieces if p.type == _NORMAL]
    floor = (min(scores) if scores else 0.0) - _UNUSED_PENALTY
    rows = [[p.piece, floor if p.type == _BYTE else p.score] for p in proto.pieces]
    if mask_id(proto) == len(rows):
        rows.append([MASK, 0.0])
    return rows


def _normalizer(spec) -> dict | None:
    """SentencePiece's normalizer: charsmap, then whitespace trimming and collapsing."""
    import base64

    steps = []
    if spec.precompiled_charsmap:
        charsmap = base64.b64encode(spec.precompiled_charsmap).decode()
        steps.append({"type": "Precompiled", "precompiled_charsmap": charsmap})
    if spec.remove_extra_whitespaces:
        # SentencePiece trims and collapses U+0020 only (after the charsmap): not Unicode spaces
        steps.append({"type": "Replace", "pattern": {"Regex": "^ +| +$"}, "content": ""})
        steps.append({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "})
    return {"type": "Sequence", "normalizers": steps} if steps else None


def _added_token(token_id: int, content: str) -> dict:
    return {
        "id": token_id,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": True,
    }


def _post_processor(mask_free_ids: dict[str, int]) -> dict:
    cls_id, sep_id = mask_free_ids["cls"], mask_free_ids["sep"]
    return {
        "type": "TemplateProcessing",
        "single": [
            {"SpecialToken": {"id": CLS, "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": SEP, "type_id": 0}},
        ],
        "pair": [
            {"SpecialToken": {"id": CLS, "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": SEP, "type_id": 0}},
            {"Sequence": {"id": "B", "type_id": 1}},
            {"SpecialToken": {"id": SEP, "type_id": 1}},
        ],
        "special_tokens": {
            CLS: {"id": CLS, "ids": [cls_id], "tokens": [CLS]},
            SEP: {"id": SEP, "ids": [sep_id], "tokens": [SEP]},
        },
    }


def tokenizer_json(proto) -> dict:
    """A tokenizers serialization that encodes like SentencePiece (with [MASK] added)."""
    check_special_pieces(proto)
    spec = proto.normalizer_spec
    ids = special_ids(mask_id(proto))
    prepend = "always" if spec.add_dummy_prefix else "never"
    added = [_added_token(i, p) for i, p in enumerate(SPECIAL_PIECES)]
    added.append(_added_token(ids["mask"], MASK))
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": _normalizer(spec),
        "pre_tokenizer": {
            "type": "Metaspace",
            "replacement": "▁",
            "prepend_scheme": prepend,
            "split": True,
        },
        "post_processor": _post_processor(ids),
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {
                    "type": "Strip",
                    "content": " ",
                    "start": 1 if spec.add_dummy_prefix else 0,
                    "stop": 0,
                },
            ],
        },
        "model": {
            "type": "Unigram",
            "unk_id": ids["unk"],
            "vocab": _unigram_vocab(proto),
            "byte_fallback": proto.trainer_spec.byte_fallback,
        },
    }


def special_tokens_map() -> dict:
    return {
        "bos_token": CLS,
        "eos_token": SEP,
        "unk_token": UNK,
        "sep_token": SEP,
        "pad_token": PAD,
        "cls_token": CLS,
        "mask_token": MASK,
    }


def tokenizer_config(mask: int) -> dict:
    ids = special_ids(mask)
    decoder = {str(ids[name]): _added_token(ids[name], tok) for name, tok in _ROLES.items()}
    for entry in decoder.values():
        del entry["id"]
    return {
        "tokenizer_class": TOKENIZER_CLASS,
        "do_lower_case": False,
        "split_by_punct": False,
        "vocab_type": "spm",
        "model_max_length": MODEL_MAX_LENGTH,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "token_type_ids", "attention_mask"],
        "added_tokens_decoder": decoder,
        **special_tokens_map(),
    }


_ROLES = {"pad": PAD, "cls": CLS, "sep": SEP, "unk": UNK, "mask": MASK}


def write_tokenizer_files(vocab_dir: str, spm_model: bytes) -> dict[str, int]:
    """Write tokenizer.json, tokenizer_config.json, special_tokens_map.json; return special ids."""
    proto = load_model_proto(spm_model)
    tok = tokenizer_json(proto)
    # tokenizer.json is large (250K rows): compact separators, ensure_ascii off for readability
    text = json.dumps(tok, ensure_ascii=False, separators=(",", ":"))
    io.write_text(io.join(vocab_dir, "tokenizer.json"), text)
    io.write_json(io.join(vocab_dir, "tokenizer_config.json"), tokenizer_config(mask_id(proto)))
    io.write_json(io.join(vocab_dir, "special_tokens_map.json"), special_tokens_map())
    return special_ids(mask_id(proto))
