"""Small clean-corpus fixtures in the real format (the fixtures themselves are in conftest.py).

The corpus is synthetic but shaped like the real thing: Zipf-distributed words of four
"languages" in three scripts (Latin, Cyrillic, Han without spaces), a few long paragraphs, digits
and one rare character that only byte fallback can encode.
"""

from __future__ import annotations

import hashlib
import json
import random

from mdeberta.clean_corpus import part_name, write_corpus_manifest, write_part

LATIN = ("ka", "to", "ri", "ne", "sa", "mu", "le", "po", "di", "ga", "ven", "tor", "al", "es")
CYRILLIC = ("ка", "то", "ри", "не", "са", "му", "ле", "по", "ди", "га", "вен", "тор", "ал", "ес")
HAN = tuple(chr(0x4E00 + i * 37) for i in range(60))
RARE = "ᚠ"  # one occurrence: below the character coverage, so encoded as 3 UTF-8 bytes
MAX_SENTENCE_BYTES = 512


def _lexicon(rng: random.Random, syllables, size: int, joiner: str = "") -> list[str]:
    return [joiner.join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(size)]


def _paragraph(rng: random.Random, lexicon: list[str], words: int, spaced: bool) -> str:
    weights = [1 / (rank + 1) for rank in range(len(lexicon))]  # Zipf
    chosen = rng.choices(lexicon, weights=weights, k=words)
    if not spaced:
        return "".join(w + ("。" if i % 9 == 8 else "") for i, w in enumerate(chosen))
    sentences = [" ".join(chosen[i : i + 8]) + "." for i in range(0, len(chosen), 8)]
    return " ".join(s.capitalize() for s in sentences)


def make_docs(lang: str, n_docs: int, seed: int = 0) -> list[dict]:
    """Documents {"id", "lang", "text"} of a synthetic language; a few paragraphs each."""
    rng = random.Random(f"{lang}{seed}")
    syllables, spaced = {"ru": (CYRILLIC, True), "zh-Hans": (HAN, False)}.get(lang, (LATIN, True))
    lexicon = _lexicon(rng, syllables, 300)
    docs = []
    for d in range(n_docs):
        paragraphs = [_paragraph(rng, lexicon, rng.randint(5, 30), spaced) for _ in range(3)]
        if d == 1:
            paragraphs.append(_paragraph(rng, lexicon, 400, spaced))  # > MAX_SENTENCE_BYTES
        if d == 2:
            paragraphs.append(f"{lexicon[0]} 2024 {lexicon[1]} 31415")
        text = "\n".join(paragraphs)
        docs.append({"id": hashlib.sha1(f"{lang}{d}{text}".encode()).hexdigest(), "text": text})
    for doc in docs:
        doc["lang"] = lang
    return docs


def write_clean_corpus(root, docs_by_lang: dict[str, list[dict]], parts: int = 2) -> str:
    """A clean corpus directory: {lang}/part-*.jsonl.zst, stats.json, manifest.json."""
    root.mkdir(parents=True, exist_ok=True)
    stats, files = {}, {}
    for lang, docs in docs_by_lang.items():
        for p in range(parts):
            name = f"{lang}/{part_name(p, parts)}"
            records = [(d["id"], d["lang"], d["text"]) for d in docs[p::parts]]
            files[name] = write_part(str(root / name), records, level=3)
        paragraphs = [x for d in docs for x in d["text"].split("\n")]
        chars = sum(len(d["text"]) for d in docs)
        stats[lang] = {
            "docs_in": len(docs),
            "docs_out": len(docs),
            "paragraphs_in": len(paragraphs),
            "paragraphs_out": len(paragraphs),
            "chars_in": chars,
            "chars_out": chars,
            "removed": {},
        }
    totals = {k: sum(s[k] for s in stats.values()) for k in ("docs_out", "chars_out")}
    (root / "stats.json").write_text(json.dumps({"languages": stats, "totals": totals}))
    write_corpus_manifest(str(root), files, {"fixture": True})
    return str(root)


CORPUS_SIZES = {"en": 120, "ru": 60, "zh-Hans": 40, "sw": 4}
VOCAB_SIZE = 600
