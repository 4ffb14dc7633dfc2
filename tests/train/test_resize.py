"""Continuing on shards of an extended vocabulary: the extension found (or refused), the tables
grown, and the whole path end to end on CPU (extend-vocab -> shards -> train -> export -> HF)."""

from __future__ import annotations

import hashlib
import json
import lzma
from pathlib import Path

import pytest
import torch

from mdeberta import hf, io, resources_path
from mdeberta.config import ConfigError
from mdeberta.manifest import ManifestError, write_manifest
from mdeberta.shards import VocabMismatchError, read_shards_manifest
from mdeberta.train.build import build_model, round_up
from mdeberta.train.config import TrainConfig
from mdeberta.train.pretrained import init_from_pretrained, pretrained_configs
from mdeberta.train.resize import VocabExtension, find_extension, grow_rows, read_extension

BASE_IDS = 301  # the reference vocabulary: 300 spm pieces and [MASK]


def extension(new_ids, base_ids, base_vocab_size=BASE_IDS) -> VocabExtension:
    return VocabExtension("ext/", "0" * 64, base_vocab_size, tuple(new_ids), tuple(base_ids))


def grown_model(path: str, vocab: dict, ext: VocabExtension, **cfg):
    """An RTD model with rows for the extension, initialised from `path` as train does."""
    disc, gen = pretrained_configs(path, None, {})
    ids = max(ext.new_ids) + 1
    disc, gen = disc.replace(vocab_size=round_up(ids, 8)), gen.replace(vocab_size=round_up(ids, 8))
    model = build_model(TrainConfig(**cfg), disc, gen, {**vocab, "vocab_size": ids})
    init_from_pretrained(model, path, ext)
    return model


def test_grow_rows_copies_base_rows_and_averages_segmentations():
    old = torch.arange(10.0).view(5, 2)
    fresh = torch.full((8, 2), -1.0)
    ext = extension(new_ids=(4, 5), base_ids=((0, 1), (2, 2, 3)), base_vocab_size=4)
    out = grow_rows(old, fresh, ext)
    assert torch.equal(out[:4], old[:4])
    assert torch.equal(out[4], (old[0] + old[1]) / 2)  # an old padding row taken by a new piece
    assert torch.allclose(out[5], (2 * old[2] + old[3]) / 3)  # repeated ids count twice
    assert torch.equal(out[6:], fresh[6:])  # rows past both keep the new model's values
    bias = grow_rows(torch.arange(5.0), torch.zeros(8), ext)
    assert bias[4] == 0.5 and bias[5] == pytest.approx(7 / 3)


def test_from_an_export_every_vocabulary_table_grows(reference_run, vocab):
    hf_dir = str(Path(reference_run) / "hf")
    ext = extension(range(301, 311), [(5 + i, 40 + i) for i in range(10)])
    model = grown_model(hf_dir, vocab, ext, sharing="gdes")
    gen = hf.load_pretrained(f"{hf_dir}/generator", head="mlm").state_dict()
    disc = hf.load_pretrained(f"{hf_dir}/discriminator", head="rtd").state_dict()
    E_G_old = gen["deberta.embeddings.word_embeddings.weight"]
    E_D_old = disc["deberta.embeddings.word_embeddings.weight"]
    bias_old = gen["cls.predictions.bias"]
    bias = model.generator.state_dict()["cls.predictions.bias"]
    E_D = model.discriminator_embeddings()
    assert model.E_G.shape[0] == 312 and E_G_old.shape[0] == 304
    assert torch.equal(model.E_G[:301], E_G_old[:301]) and torch.equal(bias[:301], bias_old[:301])
    assert torch.allclose(E_D[:301], E_D_old[:301], atol=1e-6)
    for new, base in zip(ext.new_ids, ext.base_ids, strict=True):
        assert torch.allclose(model.E_G[new], E_G_old[list(base)].mean(0), atol=1e-6)
        assert torch.allclose(E_D[new], E_D_old[list(base)].mean(0), atol=1e-6)
        delta = (E_D_old - E_G_old)[list(base)].mean(0)
        assert torch.allclose(model.E_delta[new], delta, atol=1e-6)  # E_delta's mean, too
        assert bias[new] == pytest.approx(bias_old[list(base)].mean().item(), abs=1e-6)
    assert not model.E_delta[311:].any()  # padding rows: nothing for D to add


def test_from_a_released_encoder_E_G_grows_from_its_table(reference_run, vocab):
    released = str(Path(reference_run) / "hf" / "discriminator")
    ext = extension((301, 302), ((7,), (8, 9)))
    model = grown_model(released, vocab, ext, sharing="nes")
    E_D = hf.load_pretrained(released, head="rtd").deberta.embeddings.word_embeddings.weight
    assert torch.allclose(model.E_G[302], E_D[[8, 9]].mean(0))
    assert torch.equal(model.discriminator_embeddings()[:301], E_D[:301])
    assert torch.allclose(model.discriminator_embeddings()[302], E_D[[8, 9]].mean(0))


def fake_extension(folder: Path, base_sha: str, pieces: list[dict]) -> tuple[str, str]:
    """A vocabulary directory whose manifest says it extends the spm.model with `base_sha`;
    returns (dir, its spm sha256)."""
    folder.mkdir(parents=True)
    model = f"an extended spm.model of {base_sha}".encode()
    (folder / "spm.model").write_bytes(model)
    body = {"base": {"spm_sha256": base_sha, "vocab_size": BASE_IDS}, "pieces": pieces}
    (folder / "extension.json").write_text(json.dumps(body))
    names = ("spm.model", "extension.json")
    files = {n: {"sha256": io.sha256_file(str(folder / n))} for n in names}
    sha = hashlib.sha256(model).hexdigest()
    extra = {"spm_sha256": sha, "vocab_size": BASE_IDS + len(pieces)}
    extra["extension"] = {"base": body["base"], "file": "extension.json"}
    write_manifest(str(folder), "vocabulary", 1, {}, files=files, extra=extra)
    return str(folder), sha


def _shards_of(shards: str, vocab_dir: str, sha: str) -> dict:
    manifest = json.loads(json.dumps(read_shards_manifest(shards)))
    manifest["vocab"].update(sha256=sha, url=vocab_dir)
    return manifest


def test_shards_of_an_extension_of_the_model_are_found(reference_run, shards, tmp_path):
    model_dir = str(Path(reference_run) / "hf" / "discriminator")
    model_sha = io.sha256_file(f"{model_dir}/spm.model")
    pieces = [{"id": 301, "piece": "▁novel", "base_ids": [5, 6]}]
    folder, sha = fake_extension(tmp_path / "ext", model_sha, pieces)
    found = find_extension(model_dir, _shards_of(shards, folder, sha), shards)
    assert found == read_extension(folder)
    assert found.new_ids == (301,) and found.base_ids == ((5, 6),)
    # moved: the shards name a directory that is gone, --vocab says where it is now
    moved = _shards_of(shards, str(tmp_path / "gone"), sha)
    assert find_extension(model_dir, moved, shards, vocab=folder) == found
    with pytest.raises(VocabMismatchError, match="neither the model's"):
        find_extension(model_dir, moved, shards)
    Path(folder, "extension.json").write_text(json.dumps({"base": {}, "pieces": []}))
    with pytest.raises(ManifestError, match="extension.json"):  # checked on read
        find_extension(model_dir, _shards_of(shards, folder, sha), shards)


def test_an_extension_of_another_model_is_refused_naming_both(reference_run, shards, tmp_path):
    model_dir = str(Path(reference_run) / "hf" / "discriminator")
    folder, sha = fake_extension(tmp_path / "ext", "1" * 64, [])
    model_sha = io.sha256_file(f"{model_dir}/spm.model")
    with pytest.raises(VocabMismatchError, match=f"sha256 {'1' * 64}.*sha256 {model_sha}"):
        find_extension(model_dir, _shards_of(shards, folder, sha), shards)


def test_a_model_without_its_vocabulary_cannot_be_extended(reference_run, shards, tmp_path):
    folder, sha = fake_extension(tmp_path / "ext", "1" * 64, [])
    (tmp_path / "model").mkdir()
    with pytest.raises(ConfigError, match="has no spm.model: cannot check"):
        find_extension(str(tmp_path / "model"), _shards_of(shards, folder, sha), shards)


# end to end: the reference model (trained by this stack on the packaged sample text) adapted
# to Amharic (a script its vocabulary lacks) and Swahili (a language it splits badly)

BASE_LANGUAGES = ("ar", "bg", "bn", "de", "el", "en")  # what the reference vocabulary saw


def _sample_docs(lang: str, n: int = 40) -> list[dict]:
    with lzma.open(resources_path("sample", f"{lang}.txt.xz"), "rt", encoding="utf-8") as f:
        lines = [line.strip() for line, _ in zip(f, range(n), strict=False) if line.strip()]
    return [
        {"id": hashlib.sha1(f"{lang}{i}".encode()).hexdigest(), "lang": lang, "text": line}
        for i, line in enumerate(lines)
    ]


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, reference_run) -> dict:
    """extend-vocab from the reference export, shards of the new text, a continued GDES run."""
    from typer.testing import CliRunner

    from mdeberta.cli import app
    from mdeberta.shards import vocab_info, write_token_shards
    from tests.train.helpers import SEQ_LEN, pack, train_here
    from tests.vocab import new_languages
    from tests.vocab.corpus import write_clean_corpus

    root = tmp_path_factory.mktemp("adapt")
    base = str(Path(reference_run) / "hf" / "discriminator")  # an HF directory with spm.model
    new = {lang: new_languages.docs(lang, 40) for lang in ("am", "sw")}
    check = {lang: _sample_docs(lang) for lang in BASE_LANGUAGES}
    corpus = write_clean_corpus(root / "clean-new", new)
    check_corpus = write_clean_corpus(root / "clean-base", check)
    out = str(root / "vocab-ext")
    args = ["extend-vocab", "--base", base, "--corpus", corpus, "--check-corpus", check_corpus]
    args += ["--output", out, "--add", "120", "--sentences", "1000", "--set", "num_threads=1"]
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise RuntimeError(f"extend-vocab failed:\n{result.output}") from result.exception
    lines = {k: [p for d in docs for p in d["text"].split("\n")] for k, docs in new.items()}
    lines.update({k: [d["text"] for d in docs] for k, docs in check.items()})
    text = [line for k in sorted(lines) for line in lines[k]]  # the new languages and the old
    shards = str(root / "shards")
    rows = pack(Path(out), text * 3)
    write_token_shards(shards, rows, seq_len=SEQ_LEN, vocab=vocab_info(out), sequences_per_shard=64)
    run = str(root / "run")
    init = f"init_from={Path(reference_run) / 'hf'}"
    with pytest.warns(UserWarning, match="model sizes come from it"):  # tiny.toml's sizes
        metrics = train_here(shards, run, "steps=4", init, "export_at_end=true", vocab=out)
    return {"base": base, "vocab": out, "run": run, "lines": lines, "metrics": metrics}


def test_adapting_drops_fertility_and_keeps_base_ids(adapted):
    import sentencepiece as spm

    report = json.loads(Path(adapted["vocab"], "report.json").read_text())
    new = report["languages"]["new"]
    assert new["sw"]["pieces_per_unit_change"] <= -0.3, new["sw"]  # split badly, now less
    # the reference vocabulary has no byte fallback: Amharic was [UNK] (one per word), now spelt
    assert new["am"]["before"]["unk_rate"] > 0.3 and new["am"]["after"]["unk_rate"] == 0
    base = spm.SentencePieceProcessor(model_file=f"{adapted['base']}/spm.model")
    ext = spm.SentencePieceProcessor(model_file=f"{adapted['vocab']}/spm.model")
    assert [ext.id_to_piece(i) for i in range(300)] == [base.id_to_piece(i) for i in range(300)]
    assert ext.piece_to_id("[MASK]") == 300 and ext.get_piece_size() == BASE_IDS + 120
    for lang in BASE_LANGUAGES:
        assert report["languages"]["check"][lang]["changed_without_new_pieces"] == 0
        for line in adapted["lines"][lang]:  # base-language lines that use no new piece
            ids = ext.encode(line)
            if max(ids) < BASE_IDS:
                assert ids == base.encode(line), line


def test_continued_gdes_training_starts_from_the_grown_model(adapted, reference_run, vocab):
    info = json.loads(Path(adapted["run"], "run.json").read_text())
    assert info["config"]["sharing"] == "gdes"
    assert info["vocab_extension"]["added"] == 120
    assert info["discriminator"]["vocab_size"] == round_up(BASE_IDS + 120, 8)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in adapted["metrics"])
    ext = read_extension(adapted["vocab"])
    model = grown_model(str(Path(reference_run) / "hf"), vocab, ext)
    gen = hf.load_pretrained(f"{reference_run}/hf/generator", head="mlm")
    E_G = gen.deberta.embeddings.word_embeddings.weight
    for new, base in zip(ext.new_ids, ext.base_ids, strict=True):
        assert torch.allclose(model.E_G[new], E_G[list(base)].mean(0), atol=1e-6)


def test_the_export_loads_with_auto_classes_and_tokenizes_as_sentencepiece(adapted):
    import sentencepiece as spm
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    disc_dir = f"{adapted['run']}/hf/discriminator"
    tok = AutoTokenizer.from_pretrained(disc_dir)
    sp = spm.SentencePieceProcessor(model_file=f"{adapted['vocab']}/spm.model")
    assert len(tok) == BASE_IDS + 120 and tok.mask_token_id == 300
    for lines in adapted["lines"].values():
        for line in lines:
            assert tok(line)["input_ids"] == [1, *sp.encode(line), 2], line
    model = AutoModel.from_pretrained(disc_dir).eval()
    assert model.get_input_embeddings().weight.shape[0] == round_up(BASE_IDS + 120, 8)
    batch = tok(adapted["lines"]["am"][:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.isfinite(model(**batch).last_hidden_state).all()
    AutoModelForMaskedLM.from_pretrained(f"{adapted['run']}/hf/generator")
