"""XNLI and MultiNLI loaders: every source becomes `Pair`s labelled in one order.

Sources are written `KIND:LOCATION[?key=value&...]`:

    hub:facebook/xnli              the hub (datasets.load_dataset); per-language configs or one
    hub:facebook/xnli?config=all_languages
    hub:nyu-mll/multi_nli          English MultiNLI (dev role: validation_matched)
    xnli-tsv:XNLI-1.0/xnli.test.tsv   XNLI 1.0 dev/test TSV, all 15 languages in one file
    multinli:multinli_1.0_train.jsonl MultiNLI 1.0 jsonl (gold_label "-" skipped and counted)
    mt-tsv:XNLI-MT-1.0/multinli/multinli.train.de.tsv  machine-translated train (premise/hypo/label)
    disk:DIR                       a Dataset or DatasetDict saved with save_to_disk

A bare path is recognised by its name or header where that is unambiguous; a directory holding
xnli.dev.tsv / xnli.test.tsv / a MultiNLI train jsonl (the XNLI-1.0 layout, or our packaged
fixture) gives each role its file. Parameters: `split=` (else chosen by role), `config=`,
`lang=` (the language of a source that does not name it), `labels=` (the names of integer labels
in id order, for a source that does not say). Labels are matched by name, never by index: the
hub's XNLI and MultiNLI use 0 entailment, 1 neutral, 2 contradiction, XTREME's processor
contradiction/entailment/neutral, XNLI-MT writes "contradictory".
"""

from __future__ import annotations

import csv
import json
import os
import posixpath
import re
import urllib.parse
from collections.abc import Iterable, Sequence

from mdeberta import io
from mdeberta.eval import hub
from mdeberta.eval.nli import DataError, NLIData, Source

KINDS = ("hub", "xnli-tsv", "multinli", "mt-tsv", "disk")
ROLES = ("train", "dev", "test")
# file names tried per role inside a directory (XNLI-1.0 layout, MultiNLI 1.0, our fixture)
ROLE_FILES = {
    "train": ("multinli.train.jsonl", "multinli_1.0_train.jsonl", "multinli.train.en.tsv"),
    "dev": ("xnli.dev.tsv",),
    "test": ("xnli.test.tsv",),
}
# source specs


def parse_source(spec: str, role: str) -> Source:
    """The Source a spec string names, for `role` (train, dev or test)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    spec = spec.strip()
    location, _, query = spec.partition("?")
    params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    unknown = set(params) - {"split", "config", "lang", "labels"}
    if unknown:
        raise DataError(
            f"{spec}: unknown parameter(s) {sorted(unknown)}; valid: split, config, lang, labels"
        )
    kind, sep, rest = location.partition(":")
    # "gs://...", "C:\..." are locations, not kinds
    if sep and not rest.startswith("//") and len(kind) > 1:
        if kind not in KINDS:
            raise DataError(
                f"unknown source kind {kind!r} in {spec!r}; valid kinds: {', '.join(KINDS)} "
                "(KIND:LOCATION, or a bare path whose format is recognised)"
            )
        return _with_role_file(Source(kind, rest, params), role)
    return _with_role_file(Source(detect_kind(location, role), location, params), role)


def _with_role_file(source: Source, role: str) -> Source:
    """A file-format source given as a directory points at the role's file inside it."""
    if source.kind in ("hub", "disk") or not _isdir(source.location):
        return source
    name = _role_file(source.location, role)
    return Source(source.kind, io.join(source.location, name), source.params)


def _isdir(url: str) -> bool:
    fs, path = io.url_to_fs(url)
    return fs.isdir(path)


def _role_file(directory: str, role: str) -> str:
    for name in ROLE_FILES[role]:
        if io.exists(io.join(directory, name)):
            return name
    raise DataError(f"{directory}: no {role} file (looked for {', '.join(ROLE_FILES[role])})")


def detect_kind(location: str, role: str) -> str:
    """The kind of a bare path: by directory layout, file name, or TSV header."""
    if not io.exists(location):
        raise DataError(
            f"no such file or directory: {location!r} "
            f"(a hub dataset is written hub:NAME; valid kinds: {', '.join(KINDS)})"
        )
    if _isdir(location):
        names = set(io.listdir(location))
        if names & {"dataset_dict.json", "state.json", "dataset_info.json"}:
            return "disk"
        location = io.join(location, _role_file(location, role))
    name = os.path.basename(location).lower()
    if re.search(r"\.jsonl(\.(gz|xz|zst|bz2))?$", name):
        return "multinli"
    header = _header(location)
    if {"gold_label", "sentence1", "sentence2", "language"} <= set(header):
        return "xnli-tsv"
    if header[:3] == ["premise", "hypo", "label"]:
        return "mt-tsv"
    raise DataError(f"{location}: cannot tell its format; write KIND:PATH with KIND one of {KINDS}")


def _header(url: str) -> list[str]:
    with io.open_file(url, "rt") as f:
        return f.readline().rstrip("\r\n").split("\t")


def default_dev(test: str) -> str:
    """The dev set that goes with a test source, for a run that names no --dev: the same hub
    dataset or saved dataset (its validation split), the same directory (its xnli.dev.tsv), or
    the dev file beside a test file (xnli.test.tsv -> xnli.dev.tsv)."""
    source = parse_source(test, "test")
    params = {k: v for k, v in source.params.items() if k != "split"}
    if source.kind in ("hub", "disk"):
        return str(Source(source.kind, source.location, params))
    folder, name = posixpath.split(source.location)
    dev = posixpath.join(folder, name.replace("test", "dev"))
    if dev == source.location or not io.exists(dev):
        raise DataError(
            f"no dev set beside the test set {test} (looked for {dev}); pass --dev SOURCE, or "
            "--dev none to keep the last step"
        )
    return str(Source(source.kind, dev, params))


# loading


def load_nli(
    spec: str | Source,
    role: str,
    languages: Sequence[str],
    *,
    max_malformed_fraction: float = 0.01,
) -> NLIData:
    """Every pair of `languages` in the source, labels in LABELS order.

    Fails with DataError when a requested language is absent, or when more than
    max_malformed_fraction of the rows is malformed (malformed rows are counted either way)."""
    source = spec if isinstance(spec, Source) else parse_source(spec, role)
    loader = {
        "hub": hub.load_hub,
        "disk": hub.load_disk,
        "xnli-tsv": _load_xnli_tsv,
        "multinli": _load_multinli,
        "mt-tsv": _load_mt_tsv,
    }[source.kind]
    data = NLIData(str(source), wanted=frozenset(languages))
    loader(source, role, list(languages), data)
    check_data(data, languages, max_malformed_fraction)
    data.pairs = {lang: data.pairs[lang] for lang in languages}  # in the requested order
    return data


def check_data(data: NLIData, languages: Sequence[str], max_malformed_fraction: float) -> None:
    if data.rows and data.malformed > max_malformed_fraction * data.rows:
        raise DataError(
            f"{data.source}: {data.malformed} of {data.rows} rows are malformed "
            f"({dict(data.skipped)}), more than the allowed {max_malformed_fraction:.2%}; "
            f"first ones: {'; '.join(data.examples)}"
        )
    missing = [lang for lang in languages if not data.pairs.get(lang)]
    if missing:
        present = ", ".join(sorted(data.seen)) or "none"
        raise DataError(
            f"{data.source}: no pairs for language(s) {', '.join(missing)}; it has: {present}"
        )


def _xnli_reader(f) -> Iterable[list[str]]:
    # XNLI text holds stray quotes: QUOTE_NONE, as the HF loader and XTREME read it
    return csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)


def xnli_rows(f, url: str, need: Sequence[str]) -> tuple[list[str], dict[str, int], Iterable]:
    """An open XNLI 1.0 TSV's header, the index of each column in `need` (a DataError naming the
    file if one is missing) and its (line number, row) pairs."""
    rows = _xnli_reader(f)
    header = next(rows, [])
    if not set(need) <= set(header):
        raise DataError(f"{url}: header lacks {tuple(need)} (not an XNLI 1.0 TSV)")
    return header, {name: header.index(name) for name in need}, enumerate(rows, start=2)


def _load_xnli_tsv(source: Source, role: str, languages: list[str], data: NLIData) -> None:
    with io.open_file(source.location, "rt") as f:
        need = ("language", "gold_label", "sentence1", "sentence2")
        header, col, rows = xnli_rows(f, source.location, need)
        for line, row in rows:
            where = f"{source.location}:{line}"
            if len(row) != len(header):
                data.rows += 1
                data.skip("wrong_column_count", where)
                continue
            premise, hypothesis = row[col["sentence1"]], row[col["sentence2"]]
            data.add(premise, hypothesis, row[col["gold_label"]], row[col["language"]], where)


def _load_mt_tsv(source: Source, role: str, languages: list[str], data: NLIData) -> None:
    name = os.path.basename(source.location)
    match = re.search(r"\.([a-z]{2,3})\.tsv", name)
    lang = source.params.get("lang") or (match.group(1) if match else None)
    if lang is None:
        raise DataError(f"{source.location}: cannot tell the language from the name; add ?lang=xx")
    with io.open_file(source.location, "rt") as f:
        rows = _xnli_reader(f)
        header = next(rows, [])
        if header[:3] != ["premise", "hypo", "label"]:
            raise DataError(
                f"{source.location}: header is {header[:3]}, expected premise hypo label"
            )
        for line, row in enumerate(rows, start=2):
            where = f"{source.location}:{line}"
            if len(row) != len(header):
                data.rows += 1
                data.skip("wrong_column_count", where)
            else:
                data.add(row[0], row[1], row[2], lang, where)


def _load_multinli(source: Source, role: str, languages: list[str], data: NLIData) -> None:
    lang = source.params.get("lang", "en")
    with io.open_file(source.location, "rt") as f:
        for line, text in enumerate(f, start=1):
            where = f"{source.location}:{line}"
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                obj = None
            if not isinstance(obj, dict):
                data.rows += 1
                data.skip("bad_json", where)
                continue
            premise = obj.get("sentence1", obj.get("premise"))
            hypothesis = obj.get("sentence2", obj.get("hypothesis"))
            data.add(premise, hypothesis, obj.get("gold_label", obj.get("label")), lang, where)
