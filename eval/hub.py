"""Sources read through Hugging Face `datasets`: the hub (load_dataset) and save_to_disk dirs.

Rows become Pairs through their column names (premise/hypothesis/label, sentence1/sentence2/
gold_label, or XNLI-MT's premise/hypo/label) and integer labels through their ClassLabel names (or
the user's labels= list), never through a fixed index order.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence

from mdeberta.eval.nli import DataError, NLIData, Source

HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")
PROBE_SECONDS = 10
"""How long the one request that checks the hub can be reached may wait."""
LOCAL_HINT = {
    "train": "--train multinli:multinli_1.0/multinli_1.0_train.jsonl",
    "dev": "--dev xnli-tsv:XNLI-1.0/xnli.dev.tsv",
    "test": "--test xnli-tsv:XNLI-1.0/xnli.test.tsv",
    "model": "--model with a local model directory",
}

# split names tried per role, for the hub and saved DatasetDicts
ROLE_SPLITS = {
    "train": ("train",),
    "dev": ("validation", "validation_matched", "dev"),
    "test": ("test",),
}


def load_hub(source: Source, role: str, languages: list[str], data: NLIData) -> None:
    """datasets.load_dataset(location, config, split): the hub id in production, or any path
    load_dataset reads the same way (a local copy of the repo with its parquet files)."""
    import datasets

    if is_hub_id(source.location):  # not a local copy of a repo
        require_hub(f"the {role} set {source}", LOCAL_HINT[role])
    configs = _config_names(source.location)
    config = source.params.get("config")
    if config is None and set(languages) <= set(configs):
        for lang in languages:  # one config per language (facebook/xnli): download only those
            split = _pick_split(
                source, role, datasets.get_dataset_split_names(source.location, lang)
            )
            table = datasets.load_dataset(source.location, lang, split=split)
            _add_table(table, source, lang, data, f"{source}[{lang}/{split}]")
        return
    if config is None and "all_languages" in configs:
        config = "all_languages"
    split = _pick_split(source, role, datasets.get_dataset_split_names(source.location, config))
    table = datasets.load_dataset(source.location, config, split=split)
    _add_table(table, source, _single_language(source, languages), data, f"{source}[{split}]")


def check_model_source(model: str) -> None:
    """Before any work: a hub id needs the hub reachable; a local path must exist."""
    if is_hub_id(model):
        require_hub(f"the model {model}", LOCAL_HINT["model"])
    elif "://" not in model and not os.path.exists(model):
        raise FileNotFoundError(
            f"--model {model}: no such directory (nor a hub id like microsoft/mdeberta-v3-base)"
        )


def is_hub_id(model: str) -> bool:
    """`microsoft/mdeberta-v3-base` (a repo id: a name, or an owner and a name), not a local path
    that exists and not a URL; a missing local path is left to the loader to report."""
    return bool(HUB_ID.fullmatch(model)) and not os.path.exists(model)


def require_hub(what: str, hint: str) -> None:
    """Fail at once, in one line, when the hub cannot be reached: huggingface_hub would retry for
    ~25 s before failing (logging each retry), then datasets or transformers again. Offline mode
    (HF_HUB_OFFLINE=1) skips the check: the cache answers or the library says it cannot."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return
    problem = _hub_unreachable()
    if problem:
        raise DataError(
            f"cannot reach the Hugging Face hub ({problem}) to fetch {what}; pass local files "
            f"instead ({hint}; docs/xnli.md), or set HF_HUB_OFFLINE=1 to use a cached copy"
        )


@functools.cache
def _hub_unreachable() -> str | None:
    """Why one request to the hub's endpoint failed, or None if it was answered at all."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session  # the hub's client: its proxies, its certs

    try:
        get_session().head(constants.ENDPOINT, timeout=PROBE_SECONDS)
    except Exception as e:  # the transport's errors (DNS, refused, timeout, TLS) have no base
        return f"{constants.ENDPOINT}: {e}"  # class in common across httpx versions
    return None


def _config_names(location: str) -> list[str]:
    import datasets

    try:
        return list(datasets.get_dataset_config_names(location))
    except Exception as e:  # the hub raises several types; say which dataset failed
        raise DataError(f"cannot open hub dataset {location!r}: {e}") from e


def load_disk(source: Source, role: str, languages: list[str], data: NLIData) -> None:
    import datasets

    table = datasets.load_from_disk(source.location)
    where = str(source)
    if isinstance(table, datasets.DatasetDict):
        split = _pick_split(source, role, list(table))
        table, where = table[split], f"{source}[{split}]"
    _add_table(table, source, _single_language(source, languages), data, where)


def _pick_split(source: Source, role: str, splits: Sequence[str]) -> str:
    wanted = [source.params["split"]] if "split" in source.params else ROLE_SPLITS[role]
    for name in wanted:
        if name in splits:
            return name
    raise DataError(f"{source}: no split {' or '.join(wanted)} for {role}; it has {list(splits)}")


def _single_language(source: Source, languages: list[str]) -> str | None:
    """The language of rows that do not name one: lang=, else the one requested language."""
    if "lang" in source.params:
        return source.params["lang"]
    return languages[0] if len(languages) == 1 else None


def _columns(names: Sequence[str], source: Source) -> tuple[str, str, str]:
    for premise, hypothesis, label in (
        ("premise", "hypothesis", "label"),
        ("sentence1", "sentence2", "gold_label"),
        ("premise", "hypo", "label"),
    ):
        if {premise, hypothesis, label} <= set(names):
            return premise, hypothesis, label
    raise DataError(f"{source}: columns {list(names)} have no premise/hypothesis/label")


def _label_names(table, column: str, source: Source) -> list[str] | None:
    """Names of integer labels in id order: the ClassLabel's, or labels= given by the user."""
    if "labels" in source.params:
        return source.params["labels"].split(",")
    feature = table.features[column]
    return list(feature.names) if hasattr(feature, "names") else None


def _add_table(table, source: Source, language: str | None, data: NLIData, where: str) -> None:
    premise_col, hypothesis_col, label_col = _columns(table.column_names, source)
    names = _label_names(table, label_col, source)
    lang_col = next((c for c in ("language", "lang") if c in table.column_names), None)
    translated = isinstance(table[0][premise_col], dict) if len(table) else False
    if language is None and lang_col is None and not translated:
        raise DataError(f"{source}: rows name no language and several were requested; add ?lang=xx")
    row = 0
    # column batches: far faster than row dicts on the 392,702 training pairs
    for batch in table.iter(batch_size=10_000):
        labels = [_label_name(label, names, source) for label in batch[label_col]]
        langs = batch[lang_col] if lang_col else [language] * len(labels)
        for premise, hypothesis, label, lang in zip(
            batch[premise_col], batch[hypothesis_col], labels, langs, strict=True
        ):
            if translated:
                _add_translations(premise, hypothesis, label, data, f"{where}#{row}")
            else:
                data.add(premise, hypothesis, label, lang, f"{where}#{row}")
            row += 1


def _label_name(label, names: list[str] | None, source: Source) -> str | None:
    if not isinstance(label, int):
        return label
    if label < 0:
        return None  # the hub's -1: no gold label
    if names is None:
        raise DataError(f"{source}: integer labels without names; add ?labels=a,b,c (id order)")
    return names[label] if label < len(names) else f"id {label}"


def _add_translations(premises: dict, hypotheses: dict, label, data: NLIData, where: str) -> None:
    """facebook/xnli's all_languages rows: premise {lang: text}, hypothesis {language: [...],
    translation: [...]}."""
    by_lang = dict(zip(hypotheses["language"], hypotheses["translation"], strict=True))
    for lang, premise in premises.items():
        data.add(premise, by_lang.get(lang), label, lang, where)
