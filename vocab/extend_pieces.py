"""The SentencePiece side of an extension: which pieces to add, their scores, the extended model.

    base = load_model_proto(spm_model)
    new = new_pieces(candidates, base)[:n]                 # (piece, score) the base lacks
    pieces, offset = placed_scores(new, candidates, base)  # scores on the base's scale
    model = extended_model(base, pieces)                   # base ids and [MASK] kept, new ids after
    base_ids = base_segmentations(base, [p for p, _ in pieces])

Ids: every base piece keeps its id; [MASK] (not a piece of a build-vocab or mDeBERTa spm.model, but
the id after its pieces) becomes a control piece at that id, which SentencePiece never produces
from text; the new pieces follow it. SentencePiece and the tokenizer files then agree on every id.

Scores: a unigram model picks the segmentation with the highest sum of piece scores (log
probabilities). The candidates' log probabilities come from a model of the new text and are moved
onto the base's scale by the median difference over the pieces both models have, then kept inside
the range of the base's scores: a new piece that is probable in the new text wins over a chain of
base pieces there, and the base's own minimum score (which sets SentencePiece's penalty for
unknown characters) does not move. Base scores are not touched, so a line whose new segmentation
uses no new piece is segmented exactly as the base did (the base's best path is still the best one
among paths of base pieces).
"""

from __future__ import annotations

import statistics

from mdeberta.vocab.tokenizer import MASK, mask_id

NORMAL, CONTROL = 1, 3  # ModelProto.SentencePiece.Type
UNIGRAM = 1  # TrainerSpec.ModelType


def _processor(proto):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=proto.SerializeToString())


def _normal_scores(proto) -> dict[str, float]:
    return {p.piece: p.score for p in proto.pieces if p.type == NORMAL}


def check_unigram(proto, where: str) -> None:
    """Fail unless `proto` is a unigram model (the only kind whose scores can be extended)."""
    if proto.trainer_spec.model_type != UNIGRAM:
        kind = proto.trainer_spec.ModelType.Name(proto.trainer_spec.model_type)
        raise ValueError(
            f"{where}: a {kind} SentencePiece model; extend-vocab extends unigram models only "
            "(mDeBERTa's and build-vocab's are unigram)"
        )


def normalizer(proto):
    """The base's normalization of raw text (its charsmap and whitespace rules), with spaces kept
    as spaces and no dummy prefix: the candidates are learnt from text as the base will see it."""
    copy = type(proto)()
    copy.CopyFrom(proto)
    copy.normalizer_spec.add_dummy_prefix = False
    copy.normalizer_spec.escape_whitespaces = False
    return _processor(copy).normalize


def new_pieces(candidates, base) -> list[tuple[str, float]]:
    """(piece, score) of the candidate model's normal pieces that the base lacks, in the order they
    are added: first the characters the base has no piece for (which it can only spell byte by
    byte, or as [UNK]), then the rest; each group most probable first (ties by piece, so the
    choice is deterministic)."""
    taken = {p.piece for p in base.pieces} | {MASK}
    rows = [(p.piece, p.score) for p in candidates.pieces if p.type == NORMAL]
    rows = sorted(((p, s) for p, s in rows if p not in taken), key=lambda r: (-r[1], r[0]))
    return [r for r in rows if len(r[0]) == 1] + [r for r in rows if len(r[0]) > 1]


def placed_scores(
    chosen: list[tuple[str, float]], candidates, base
) -> tuple[list[tuple[str, float]], float]:
    """The chosen pieces with scores on the base's scale (module doc), and the offset used."""
    ours, theirs = _normal_scores(base), _normal_scores(candidates)
    shared = [ours[p] - s for p, s in theirs.items() if p in ours]
    if shared:
        offset = statistics.median(shared)
    else:  # nothing in common (a new script, no shared digits): align the medians
        offset = statistics.median(ours.values()) - statistics.median(theirs.values())
    low, high = min(ours.values()), max(ours.values())
    return [(p, min(high, max(low, s + offset))) for p, s in chosen], offset


def extended_model(base, pieces: list[tuple[str, float]]) -> bytes:
    """spm.model: the base's pieces, [MASK] as a control piece at its id, then `pieces`."""
    proto = type(base)()
    proto.CopyFrom(base)
    if mask_id(proto) == len(proto.pieces):
        proto.pieces.add(piece=MASK, score=0.0, type=CONTROL)
    for piece, score in pieces:
        proto.pieces.add(piece=piece, score=score, type=NORMAL)
    proto.trainer_spec.vocab_size = len(proto.pieces)
    model = proto.SerializeToString()
    _processor(proto)  # SentencePiece loads it (duplicate pieces would fail here, not later)
    return model


def base_segmentations(base, pieces: list[str]) -> list[list[int]]:
    """Each piece's ids under the base model: the piece itself segmented, "▁" standing for the
    space it marks, with no dummy prefix added (a word-internal piece stays word-internal)."""
    copy = type(base)()
    copy.CopyFrom(base)
    copy.normalizer_spec.add_dummy_prefix = False
    copy.normalizer_spec.remove_extra_whitespaces = False
    sp = _processor(copy)
    unk = sp.unk_id()
    return [sp.encode(piece.replace("▁", " ")) or [unk] for piece in pieces]
