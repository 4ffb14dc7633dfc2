"""Exact dedup: deterministic survivors, consistent document and paragraph decisions."""

from __future__ import annotations

import random

from mdeberta.pipelines.accounting import Counts
from mdeberta.pipelines.clean_config import CleanConfig
from mdeberta.pipelines.dedup import (
    BOILERPLATE,
    DUPLICATE,
    WHOLE,
    Document,
    apply_drops,
    bucket_drops,
    dedup_hash,
    dedup_keys,
    drops_in_memory,
    losers,
    normalize_for_dedup,
    pack_keys,
)
from mdeberta.pipelines.rules import rule_context

CTX = rule_context("en", CleanConfig(min_doc_chars=10))


def doc(doc_id: str, *paragraphs: str, lang: str = "en", source: int = 0) -> Document:
    hashes = tuple(dedup_hash(p) for p in paragraphs)
    return Document((doc_id, source, 0), lang, paragraphs, hashes)


def test_losers_are_all_but_the_smallest_whatever_the_order():
    occurrences = [(("b", 0, 0), 1), (("a", 1, 5), 0), (("a", 0, 9), 2)]
    for _ in range(5):
        random.shuffle(occurrences)
        assert sorted(losers(occurrences)) == [(("a", 1, 5), 0), (("b", 0, 0), 1)]


def test_documents_and_paragraphs_dedup_consistently():
    shared = "A paragraph that two documents share."
    docs = [
        doc("c", "Third document, first paragraph.", shared),
        doc("a", "First document with unique text.", shared),
        doc("b", "FIRST DOCUMENT WITH UNIQUE TEXT.", "A PARAGRAPH THAT TWO DOCUMENTS SHARE."),
        doc("d", "Repeats itself here.", "Another one.", "repeats itself here."),
    ]
    drops = drops_in_memory(docs)
    assert sorted(drops) == sorted(
        [
            (("b", 0, 0), WHOLE, DUPLICATE),  # same normal form as a, the smaller id
            (("b", 0, 0), 0, DUPLICATE),
            (("b", 0, 0), 1, DUPLICATE),
            (("c", 0, 0), 1, DUPLICATE),  # the shared paragraph stays with a
            (("d", 0, 0), 2, DUPLICATE),  # a repeat inside one document
        ]
    )
    stats = Counts()
    random.shuffle(docs)
    out = list(apply_drops(docs, drops, CTX, stats))
    assert [row[0] for row in out] == [d.id for d in docs if d.id != "b"]  # the order given
    assert dict((i, text) for i, _, text in out)["c"] == "Third document, first paragraph."
    assert stats.removed["duplicate_doc"] == 1
    assert stats.paragraphs_removed["duplicate_doc"] == 2
    assert stats.paragraphs_removed["duplicate_paragraph"] == 2
    assert stats.docs_out == 3 and stats.paragraphs_out == 2 + 1 + 2


def test_dedup_is_per_language_and_can_be_switched_off():
    docs = [
        doc("a", "Same words in two languages."),
        doc("b", "Same words in two languages.", lang="de"),
    ]
    assert drops_in_memory(docs) == []
    twins = [doc("a", "One paragraph."), doc("b", "One paragraph.")]
    assert drops_in_memory(twins, documents=False) == [(("b", 0, 0), 0, DUPLICATE)]
    assert drops_in_memory(twins, paragraphs=False) == [(("b", 0, 0), WHOLE, DUPLICATE)]
    assert drops_in_memory(twins, paragraphs=False, documents=False) == []


def test_documents_emptied_or_shortened_by_dedup_are_removed():
    docs = [
        doc("a", "Alpha paragraph text.", "Beta paragraph text."),
        doc("b", "Alpha paragraph text."),
        doc("c", "Beta paragraph text.", "tiny"),
    ]
    stats = Counts()
    out = list(apply_drops(docs, drops_in_memory(docs, documents=False), CTX, stats))
    assert [row[0] for row in out] == ["a"]
    assert stats.removed["duplicate_paragraphs"] == 1  # b: nothing left of its own
    assert stats.removed["too_short"] == 1  # c: "tiny" alone is under min_doc_chars


def test_paragraphs_in_many_documents_are_boilerplate_everywhere():
    notice = "We use cookies. By browsing on you accept them."
    docs = [
        doc(f"{i}", f"Story number {'abc'[i]} is about something else.", notice) for i in range(3)
    ]
    docs.append(doc("9", notice))
    assert len(drops_in_memory(docs[:2], boilerplate_min_docs=3)) == 1  # 2 docs: a duplicate
    drops = drops_in_memory(docs, boilerplate_min_docs=3, documents=False)
    assert sorted(drops) == [((f"{i}", 0, 0), 1 if i < 3 else 0, BOILERPLATE) for i in (0, 1, 2, 9)]
    stats = Counts()
    out = list(apply_drops(docs, drops, CTX, stats))
    assert [text for _, _, text in out] == [d.paragraphs[0] for d in docs[:3]]
    assert stats.paragraphs_removed["boilerplate"] == 4
    assert stats.removed["boilerplate"] == 1  # the document that was only the notice


def test_packed_keys_give_the_same_drops_as_in_memory():
    """The Beam path: keys packed per batch, several packs per bucket, singletons skipped."""
    rng = random.Random(0)
    texts = [f"paragraph number {chr(97 + i)} with some words" for i in range(12)]
    docs = [doc(f"{i:032x}", *rng.sample(texts, rng.randint(1, 4))) for i in range(60)]
    docs += [doc(f"{i + 100:032x}", *d.paragraphs) for i, d in enumerate(docs[:5])]  # whole copies
    for min_docs in (0, 3):
        expected = drops_in_memory(docs, boilerplate_min_docs=min_docs)
        packs = [
            pack_keys(e for d in docs[i : i + 7] for e in dedup_keys(d)) for i in range(0, 65, 7)
        ]
        got = bucket_drops("en", packs, min_docs)
        assert sorted(got) == sorted(expected) and expected


def test_cc_net_normal_form_and_hash():
    assert normalize_for_dedup("  Hello, World 2018！「ok」 ") == "hello, world 0000ok"
    assert dedup_hash("Price 10 €") == dedup_hash("price 99 €")
    assert dedup_hash("a") != dedup_hash("b")
    assert 0 <= dedup_hash("x") < 2**64
