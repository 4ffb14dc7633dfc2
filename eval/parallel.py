"""Parallel sentences for retrieval: English and a translation, line by line, per language.

Sources are written `KIND:LOCATION[?key=value]`, or as a bare path whose layout tells the kind:

    laser:DIR       LASER/Tatoeba files tatoeba.{xx}-eng.{xx} and tatoeba.{xx}-eng.eng, aligned;
                    xx is Tatoeba's ISO 639-3 name (deu, cmn) or a CC-100 code (de, zh-Hans)
    tsv:PATH        {xx}.tsv files (a directory of them, or one file; ?lang=xx if its name is not a
                    code), one pair a line: english<TAB>translation
    hub:NAME        the hub dataset google/xtreme through `datasets`: its tatoeba.{xxx} configs
                    (source_sentence = the translation, target_sentence = English); ?split=
    xnli-tsv:PATH   an XNLI 1.0 TSV (all languages in one file): premises and hypotheses aligned
                    with their English by pairID; a directory: its xnli.dev.tsv and xnli.test.tsv

Every language becomes CC-100's code through the registry (mdeberta.languages); a language the
registry lacks keeps the source's own code. What cannot be used is counted per language and reason,
never dropped silently: an empty side (`empty_line`), a pair seen before (`repeated_pair`), an
English sentence or a translation that already belongs to another pair (`repeated_sentence`: with
two right answers, top-1 accuracy would be ill-defined). Files of unequal length and TSV lines that
are not two columns are errors naming the file and line.
"""

from __future__ import annotations

import csv
import os
import re
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

from mdeberta import io
from mdeberta.eval.data import xnli_rows
from mdeberta.eval.hub import is_hub_id, require_hub
from mdeberta.eval.nli import DataError, Source
from mdeberta.languages import code_from_iso639_3

KINDS = ("laser", "tsv", "hub", "xnli-tsv")
_LASER = re.compile(r"^tatoeba\.(?P<lang>.+)-eng\.(?P=lang)$")
_EXAMPLES_KEPT = 5


@dataclass
class ParallelSet:
    """The usable pairs of one language: english[i] translates as other[i]."""

    language: str
    english: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    _seen_en: set = field(default_factory=set, repr=False)
    _seen_xx: set = field(default_factory=set, repr=False)
    _seen_pairs: set = field(default_factory=set, repr=False)

    def __len__(self) -> int:
        return len(self.english)

    def add(self, english, other, where: str) -> None:
        english, other = _clean(english), _clean(other)
        if not english or not other:
            return self._skip("empty_line", where)
        if (english, other) in self._seen_pairs:
            return self._skip("repeated_pair", where)
        if english in self._seen_en or other in self._seen_xx:
            return self._skip("repeated_sentence", where)
        self._seen_pairs.add((english, other))
        self._seen_en.add(english)
        self._seen_xx.add(other)
        self.english.append(english)
        self.other.append(other)

    def _skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples) < _EXAMPLES_KEPT:
            self.examples.append(f"{where}: {reason}")

    def summary(self) -> dict:
        return {
            "pairs": len(self),
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_examples": list(self.examples),
        }


def _clean(text) -> str:
    return text.strip() if isinstance(text, str) else ""


def language_code(name: str) -> str:
    """CC-100 code for a source's language name (deu, de, cmn, zh-Hans); unknown names stay."""
    return code_from_iso639_3(name) or name


# sources


def parse_parallel_source(spec: str) -> Source:
    location, _, query = spec.strip().partition("?")
    params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    unknown = set(params) - {"split", "lang"}
    if unknown:
        raise DataError(f"{spec}: unknown parameter(s) {sorted(unknown)}; valid: split, lang")
    kind, sep, rest = location.partition(":")
    if sep and not rest.startswith("//") and len(kind) > 1:  # gs://..., C:\... are locations
        if kind not in KINDS:
            raise DataError(
                f"unknown parallel source kind {kind!r} in {spec!r}; valid kinds: "
                f"{', '.join(KINDS)} (KIND:LOCATION, or a directory whose layout is recognised)"
            )
        return Source(kind, rest, params)
    return Source(_detect_kind(location), location, params)


def _detect_kind(location: str) -> str:
    if not io.exists(location):
        raise DataError(
            f"no such file or directory: {location!r} (a hub dataset is written "
            f"hub:google/xtreme; valid kinds: {', '.join(KINDS)})"
        )
    names = io.listdir(location) if _isdir(location) else [os.path.basename(location)]
    if any(_LASER.match(n) for n in names):
        return "laser"
    if any(n.endswith(".tsv") and n.startswith("xnli.") for n in names):
        return "xnli-tsv"
    if any(n.endswith(".tsv") for n in names):
        return "tsv"
    raise DataError(
        f"{location}: no tatoeba.xx-eng.* files, {{xx}}.tsv files or xnli.*.tsv; write KIND:PATH "
        f"with KIND one of {', '.join(KINDS)}"
    )


def _isdir(url: str) -> bool:
    fs, path = io.url_to_fs(url)
    return fs.isdir(path)


def load_parallel(spec: str | Source, languages: list[str] | None = None) -> dict[str, ParallelSet]:
    """The pairs of each requested language (CC-100 codes; None: every language but English),
    in the requested order. A requested language the source lacks is an error naming those it
    has."""
    source = spec if isinstance(spec, Source) else parse_parallel_source(spec)
    loader = {"laser": _load_laser, "tsv": _load_tsv, "hub": _load_hub, "xnli-tsv": _load_xnli}
    wanted = None if languages is None else [language_code(x) for x in languages]
    sets, available = loader[source.kind](source, wanted)
    sets.pop("en", None)
    if wanted is None:
        return dict(sorted(sets.items()))
    missing = [x for x in wanted if x not in sets]
    if missing:
        has = ", ".join(sorted(set(available) - {"en"})) or "none"
        raise DataError(f"{source}: no pairs for {', '.join(missing)}; it has {has}")
    empty = [x for x in wanted if not len(sets[x])]
    if empty:
        summary = {x: dict(sets[x].skipped) for x in empty}
        raise DataError(f"{source}: no usable pairs for {', '.join(empty)} (skipped: {summary})")
    return {x: sets[x] for x in wanted}


def _lines(url: str) -> list[str]:
    with io.open_file(url, "rt") as f:
        return f.read().splitlines()


def _load_laser(source: Source, wanted: list[str] | None):
    sets: dict[str, ParallelSet] = {}
    available = []
    for name in sorted(io.listdir(source.location)):
        match = _LASER.match(name)
        lang = match and language_code(match["lang"])
        available += [lang] if match else []
        if not match or (wanted is not None and lang not in wanted):
            continue
        xx_file = io.join(source.location, name)
        en_file = io.join(source.location, f"tatoeba.{match['lang']}-eng.eng")
        if not io.exists(en_file):
            raise DataError(f"{xx_file}: its English side {en_file} is missing")
        xx, en = _lines(xx_file), _lines(en_file)
        if len(xx) != len(en):
            raise DataError(
                f"{xx_file} has {len(xx)} lines but {en_file} has {len(en)}: they must be "
                "line-aligned translations"
            )
        if lang in sets:
            raise DataError(f"{source.location}: two files give {lang} ({name} and another)")
        sets[lang] = ParallelSet(lang)
        for line, (english, other) in enumerate(zip(en, xx, strict=True), start=1):
            sets[lang].add(english, other, f"{xx_file}:{line}")
    return sets, available


def _load_tsv(source: Source, wanted: list[str] | None):
    if _isdir(source.location):
        files = [io.join(source.location, n) for n in sorted(io.listdir(source.location))]
        files = [f for f in files if f.endswith(".tsv")]
    else:
        files = [source.location]
    sets: dict[str, ParallelSet] = {}
    available = []
    for url in files:
        stem = os.path.basename(url)[: -len(".tsv")] if url.endswith(".tsv") else None
        name = source.params.get("lang") or stem
        lang = language_code(name) if name else None
        if lang is None or (code_from_iso639_3(name) is None and "lang" not in source.params):
            raise DataError(
                f"{url}: its name is not a language code; name it {{xx}}.tsv or add ?lang=xx"
            )
        if wanted is not None and lang not in wanted:
            continue
        if lang in sets:
            raise DataError(f"{source.location}: two files give {lang}")
        pairs = sets[lang] = ParallelSet(lang)
        with io.open_file(url, "rt") as f:
            for line, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
                if row == []:
                    pairs.add("", "", f"{url}:{line}")
                    continue
                if len(row) != 2:
                    raise DataError(
                        f"{url}:{line}: {len(row)} columns; each line is english<TAB>translation"
                    )
                pairs.add(row[0], row[1], f"{url}:{line}")
    return sets, available


def _load_hub(source: Source, wanted: list[str] | None):
    """google/xtreme's tatoeba.{xxx} configs: one per language, a single split (validation)."""
    import datasets

    if is_hub_id(source.location):  # not a local copy of a repo
        require_hub(f"the parallel sentences {source}", "--data laser:DIR or tsv:PATH")
    try:
        configs = [
            c
            for c in datasets.get_dataset_config_names(source.location)
            if c.startswith("tatoeba.")
        ]
    except Exception as e:  # the hub raises several types; say which dataset failed
        raise DataError(f"cannot open hub dataset {source.location!r}: {e}") from e
    sets: dict[str, ParallelSet] = {}
    for config in configs:
        lang = language_code(config.split(".", 1)[1])
        if wanted is not None and lang not in wanted:
            continue
        splits = datasets.get_dataset_split_names(source.location, config)
        split = source.params.get("split") or (
            "validation" if "validation" in splits else splits[0]
        )
        if split not in splits:
            raise DataError(f"{source}: {config} has no split {split!r}; it has {splits}")
        table = datasets.load_dataset(source.location, config, split=split)
        for column in ("source_sentence", "target_sentence"):
            if column not in table.column_names:
                raise DataError(f"{source}[{config}]: no column {column!r}: {table.column_names}")
        pairs = sets[lang] = ParallelSet(lang)
        rows = zip(table["target_sentence"], table["source_sentence"], strict=True)
        for row, (english, other) in enumerate(rows):
            pairs.add(english, other, f"{source}[{config}/{split}]#{row}")
    return sets, [language_code(c.split(".", 1)[1]) for c in configs]


def _load_xnli(source: Source, wanted: list[str] | None):
    """Each language's premises and hypotheses, paired with the English row of the same pairID."""
    if _isdir(source.location):
        names = [
            n for n in ("xnli.dev.tsv", "xnli.test.tsv") if io.exists(io.join(source.location, n))
        ]
        files = [io.join(source.location, n) for n in names]
    else:
        files = [source.location]
    if not files:
        raise DataError(f"{source.location}: no xnli.dev.tsv or xnli.test.tsv")
    rows: dict[str, dict[tuple, tuple[str, str]]] = {}  # lang -> (file, pairID, column) -> text
    for url in files:
        with io.open_file(url, "rt") as f:
            need = ("language", "sentence1", "sentence2", "pairID")
            header, col, reader = xnli_rows(f, url, need)
            for line, row in reader:
                if len(row) != len(header):
                    raise DataError(
                        f"{url}:{line}: {len(row)} columns, the header has {len(header)}"
                    )
                lang = language_code(row[col["language"]])
                for text in ("sentence1", "sentence2"):
                    key = (url, row[col["pairID"]], text)
                    rows.setdefault(lang, {})[key] = (row[col[text]], f"{url}:{line}")
    english = rows.get("en")
    if english is None:
        raise DataError(f"{source}: no English (en) rows to pair the other languages with")
    sets: dict[str, ParallelSet] = {}
    for lang, texts in rows.items():
        if lang == "en" or (wanted is not None and lang not in wanted):
            continue
        pairs = sets[lang] = ParallelSet(lang)
        for key, (other, where) in texts.items():
            if key not in english:
                raise DataError(f"{where}: pairID {key[1]} has no English row to align with")
            pairs.add(english[key][0], other, where)
    return sets, list(rows)
