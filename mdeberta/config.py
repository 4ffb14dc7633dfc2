"""Typed configs: dataclasses with a docstring under each field, loaded from TOML plus overrides.

    @dataclass
    class TrainConfig:
        steps: int = 1000
        \"\"\"Optimizer steps to run.\"\"\"

        def __post_init__(self):
            check(self.steps > 0, f"steps must be > 0, got {self.steps}")

    cfg = load_config(TrainConfig, "run.toml", ["steps=20", "model.hidden_size=64"])

Unknown keys and values of the wrong type are errors that name the valid keys or types; value
ranges are checked by each dataclass's __post_init__ through `check`.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import inspect
import re
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from mdeberta import io

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key or value that is not valid; the message says what would be."""


def check(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless `condition` holds. For __post_init__ validation."""
    if not condition:
        raise ConfigError(message)


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (and of its bases)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body
        for node, following in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, doc) for every field, nested dataclasses flattened to dotted keys."""
    rows = []
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            rows.extend(describe(hints[f.name], f"{prefix}{f.name}."))
            continue
        has_default = f.default is not dataclasses.MISSING
        default = f.default if has_default else f.default_factory()  # type: ignore[misc]
        rows.append((f"{prefix}{f.name}", repr(default), docs.get(f.name, "")))
    return rows


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A plain dict (nested for nested dataclasses), e.g. to record in a manifest."""
    return dataclasses.asdict(cfg)


def load_config(
    cls: type[T],
    path: str | None = None,
    overrides: Sequence[str] = (),
    section: str | None = None,
    flags: Sequence[tuple[str, Any, str]] = (),
) -> T:
    """Build `cls` from a TOML file (optionally one [section] of it), then command-line flags
    (key, value, how it was given: e.g. ("seq_len", 256, "--seq-len")), then `key=value`
    overrides (--set). A bad key or value is reported against where it came from: the TOML file,
    the flag, or the `--set key=value` item."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(io.read_text(path))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from e
        if section is not None:
            data = data.get(section, {})
    origin: dict[str, str] = {}  # dotted key -> where it was given, for keys not from the TOML
    for key, value, where in flags:
        _set_dotted(data, key, value, where)
        origin[key] = where
    for item in overrides:
        where = f"--set {item}"
        key, value = _parse_override(item, where)
        _set_dotted(data, key, value, where)
        origin[key] = where
    return from_dict(cls, data, source=path, origin=origin)


def from_dict(
    cls: type[T],
    data: dict[str, Any],
    source: str | None = "config",
    prefix: str = "",
    origin: dict[str, str] | None = None,
) -> T:
    """Build `cls` from a dict, coercing values to the field types; errors name the valid keys and
    where the bad key came from: origin[dotted key] when given there, else `source` (a file)."""
    origin = origin or {}

    def where(key: str) -> str:
        return origin.get(key) or source or "config"

    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for key, value in data.items():
        dotted = prefix + key
        if key not in names:
            near = difflib.get_close_matches(key, names, n=3)
            hint = f" Did you mean {', '.join(near)}?" if near else ""
            raise ConfigError(
                f"{where(dotted)}: unknown key {dotted!r}.{hint} Valid keys: {', '.join(names)}"
            )
        if dataclasses.is_dataclass(hints[key]):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{where(dotted)}: {dotted} is a table of settings, got {value!r}"
                )
            kwargs[key] = from_dict(hints[key], value, source, f"{dotted}.", origin)
        else:
            kwargs[key] = _coerce(value, hints[key], f"{where(dotted)}: {dotted}")
    try:
        return cls(**kwargs)
    except ConfigError as e:
        blame = _blame(str(e), list(kwargs), prefix, where) or source
        raise ConfigError(f"{blame}: {e}" if blame else str(e)) from None


def _blame(message: str, given: list[str], prefix: str, where: Callable[[str], str]) -> str:
    """Where the keys that a validation message names were given (a TOML file, a flag, a --set
    item), without repeats; "" when it names none of them."""
    named = [
        k for k in given if re.search(rf"(?<![\w.])({re.escape(prefix)})?{re.escape(k)}\b", message)
    ]
    return ", ".join(dict.fromkeys(where(prefix + k) for k in named))


def _parse_override(item: str, where: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{where}: not of the form key=value")
    try:  # TOML syntax first: numbers, booleans, quoted strings, arrays
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word is a string
    return key.strip(), value


def _set_dotted(data: dict[str, Any], key: str, value: Any, where: str) -> None:
    *parents, last = key.split(".")
    for part in parents:
        data = data.setdefault(part, {})
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: {part!r} is not a table of settings")
    data[last] = value


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Convert a TOML value to the annotated type, or raise ConfigError saying what was expected."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits no type")
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{where} must be one of {choices}, got {value!r}")
        return value
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        item = args[0] if args else Any
        return origin(_coerce(v, item, where) for v in value)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where} must be a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported field type {hint!r}")
