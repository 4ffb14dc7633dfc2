"""The clean corpus's content pinned: the same documents and counts through every refactoring.

Two digests per output: the bytes of each file (format 2: a language's parts are its input
files' chunks, documents in input order), and the content independent of the layout (every
(id, lang, text) row of a language, sorted, and stats.json less its part entries). The content
digests were computed on format 1 (main at 40cb270, parts by id hash, documents sorted by id) and
format 2 gives the same: moving the text out of the shuffle changed where documents go, not
which documents or what the counts say.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from mdeberta import io, resources_path
from mdeberta.pipelines.clean import run_clean
from mdeberta.pipelines.clean_config import CleanConfig
from tests.pipelines.test_clean import fixture_corpus, sample_run  # noqa: F401 (fixtures)


def output_digests(out, root) -> dict[str, str]:
    """sha256 (first 128 bits) of every output file but the manifest (which records times and
    paths); the input directory `root`, which stats.json names in bad_file_errors, reads ROOT."""
    return {
        str(p.relative_to(out)): hashlib.sha256(
            p.read_bytes().replace(str(root).encode(), b"ROOT")
        ).hexdigest()[:32]
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def content_digests(out, root) -> dict[str, str]:
    """Per language the sorted JSON lines of all its parts; "stats" for stats.json without the
    part entries (keys sorted, `root` read as ROOT)."""
    digests = {}
    for lang_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        rows = []
        for part in sorted(lang_dir.glob("part-*")):
            with io.open_file(str(part), "rt") as f:
                rows.extend(f)
        digests[lang_dir.name] = hashlib.sha256("".join(sorted(rows)).encode()).hexdigest()[:32]
    stats = json.loads((out / "stats.json").read_text().replace(str(root), "ROOT"))
    for entry in stats["languages"].values():
        entry.pop("shards")
    text = json.dumps(stats, sort_keys=True)
    digests["stats"] = hashlib.sha256(text.encode()).hexdigest()[:32]
    return digests


CONTENT = {  # computed on format 1
    "sample": {
        "de": "bf7d1c57eacff25a496432adbaf2c2e3",
        "el": "a668cd57713a8ba96d2744d26cc87236",
        "en": "b6863eeef2b8376b959ec6febb398866",
        "es": "0b5758e4dbe3e8b3dd30f401ec703552",
        "it": "7f28473286fcc9f0506b205c0443bc61",
        "stats": "027f7d4ef0273b44a8779895cb173bff",
    },
    # bad file skipped, repaired UTF-8, a 2 MB line, JSONL of other and unknown languages
    "languages": {
        "en": "5505a3bcba5fb787ab18abe121d61e74",
        "fr": "8767cab1586c4539d70178db0ad00dfd",
        "th": "d4f3a3214aeba82fc1ccee6441ac0a56",
        "stats": "08da5e3fc32d40afad684a65be46e3a8",
    },
    # max_docs_per_lang: documents over the cap in text and in JSONL files
    "cap": {
        "en": "5d656ac9ef3de76944d62326816e72bd",
        "fr": "2c18c04893f9f53de6bb30ff3c82e99a",
        "ru": "76e440a0fc4a0964bc14bf160e426c58",
        "stats": "820a3a2a2647af18f69a7366527cfd8c",
    },
}
GOLDEN = {  # format 2, computed when it was introduced
    "sample": {
        "de/part-00000-of-00001.jsonl.zst": "eb1b7e5a21cf934ee9f93d3b69bb6e6f",
        "el/part-00000-of-00001.jsonl.zst": "5939053a2e157ff7bf21c9d9f575b55d",
        "en/part-00000-of-00001.jsonl.zst": "833a986923ca03c2ad97ff892f9d6834",
        "es/part-00000-of-00001.jsonl.zst": "e68618a0fffc7e0e25adcdbb6d9a5661",
        "it/part-00000-of-00001.jsonl.zst": "e0c8af7ffa8c29670ee4604ea9301a58",
        "stats.json": "67c5b843f32765b406e57451067da1e8",
    },
    "languages": {
        "en/part-00000-of-00002.jsonl.zst": "8400f506033d05ea2c052fb317450cbd",
        "en/part-00001-of-00002.jsonl.zst": "d523e6a2eb0845f04055295d8e8e19d4",
        "fr/part-00000-of-00001.jsonl.zst": "4e7096968aab5fc9a82e0616b0ae29c4",
        "stats.json": "0ddc27bf21701e033625dfbc4c54f2b6",
        "th/part-00000-of-00001.jsonl.zst": "f63fea03236774e7701fadabad772176",
    },
    "cap": {
        "en/part-00000-of-00002.jsonl.zst": "3462282d937366a9253b450ccdccfbbd",
        "en/part-00001-of-00002.jsonl.zst": "6fb8543883dafcc2ed0934866b8b3f77",
        "fr/part-00000-of-00001.jsonl.zst": "ebe9f2be8a8283bc399cd66644087704",
        "ru/part-00000-of-00002.jsonl.zst": "8f5940cad133be5e0f322e90ec92e727",
        "ru/part-00001-of-00002.jsonl.zst": "5318fd93483b30439fc64bf18a716b64",
        "stats.json": "8cc5ae7e32519e7e1cfd47746c47eb60",
    },
}
CONFIGS = {
    "languages": {"languages": "en,fr,sw,th"},
    "cap": {"languages": "en,fr,ru,sw", "max_docs_per_lang": 40},
}


def test_sample_outputs_keep_their_content_and_bytes(sample_run):  # noqa: F811
    out, _ = sample_run
    assert content_digests(out, resources_path("sample")) == CONTENT["sample"]
    assert output_digests(out, resources_path("sample")) == GOLDEN["sample"]


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_fixture_outputs_keep_their_content_and_bytes(case, fixture_corpus, tmp_path):  # noqa: F811
    root = fixture_corpus["root"]
    inputs = [str(root / "*.txt*"), str(root / "mixed.jsonl"), str(root / "bad" / "fr.txt.xz")]
    cfg = CleanConfig(on_bad_file="skip", max_doc_chars=1 << 18, min_doc_chars=50, **CONFIGS[case])
    run_clean(inputs, str(tmp_path), cfg, workers=1)
    assert content_digests(tmp_path, root) == CONTENT[case]
    assert output_digests(tmp_path, root) == GOLDEN[case]
