"""A real tiny SentencePiece vocabulary directory in the project's layout, for tests.

ids 0-3 are [PAD] [CLS] [SEP] [UNK] and [MASK] comes after the pieces, as build-vocab writes them;
the directory gets spm.model, a "vocabulary" manifest and, on request, the HF tokenizer files.
"""

import io as _io
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm

from mdeberta import io
from mdeberta.manifest import write_manifest
from mdeberta.vocab.tokenizer import special_ids, write_tokenizer_files

SPECIALS = {
    "pad_id": 0,
    "bos_id": 1,
    "eos_id": 2,
    "unk_id": 3,
    "pad_piece": "[PAD]",
    "bos_piece": "[CLS]",
    "eos_piece": "[SEP]",
    "unk_piece": "[UNK]",
}


def write_tiny_vocab(
    folder: Path,
    lines: Iterable[str],
    vocab_size: int,
    *,
    tokenizer_files=False,
    sample_languages: Iterable[str] = (),
    **options,
) -> dict:
    """Train on `lines` (SentencePiece `options` on top) and return the shards' vocab block:
    sha256, url, vocab_size (pieces + [MASK]) and special_ids. `sample_languages`: the languages
    the manifest says the training sample held (as build-vocab records them), if any."""
    model = _io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        minloglevel=2,
        **SPECIALS,
        **options,
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spm.model").write_bytes(model.getvalue())
    if tokenizer_files:
        write_tokenizer_files(str(folder), model.getvalue())
    pieces = spm.SentencePieceProcessor(model_proto=model.getvalue()).get_piece_size()
    info = {
        "sha256": io.sha256_file(str(folder / "spm.model")),
        "url": str(folder),
        "vocab_size": pieces + 1,
        "special_ids": special_ids(pieces),
    }
    write_manifest(
        str(folder),
        "vocabulary",
        1,
        {},
        extra={
            "spm_sha256": info["sha256"],
            "vocab_size": info["vocab_size"],
            "special_ids": info["special_ids"],
            **(
                {"sample": {"languages": {k: {"paragraphs": 1} for k in sample_languages}}}
                if sample_languages
                else {}
            ),
        },
    )
    return info
