"""Typer commands built from config dataclasses, and what every command shares.

    @config_command(ShardConfig, required=("corpus", "vocab", "output"), extra_args=True)
    def shard(ctx: typer.Context, cfg: ShardConfig) -> None:
        \"\"\"Tokenise a clean corpus ... (the docstring is the help text)\"\"\"

Every field of the dataclass becomes an option whose default is the field's default and whose
help is the docstring under the field (`seq_len` -> `--seq-len`, a bool -> `--overwrite /
--no-overwrite`, a Literal -> a choice). A nested dataclass is reached with `--set table.key=...`,
or its fields become options of their own when it is named in `flatten`. Besides its flags the
command takes `--config FILE` and `--set key=value`, in this order of precedence:

    TOML file  <  flags typed on the command line  <  --set

A flag left at its default does not override the TOML file. `--verbose` shows the libraries' own
INFO logging (mdeberta/logs.py). The decorated function gets the
config as `cfg` after its own parameters (arguments and options that are not settings, such as
the input files of `clean`); a bad key or value is one line naming where it came from.

Light at import (typer, click and the standard library), like every module `mdeberta --help` loads.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, Union

import typer

from mdeberta import logs
from mdeberta.config import field_docs, load_config

# Help is laid out by click, not rich: rich's tables cut long option names at 80 columns
# (`--sequences-per-sh…`) and break docstring lines a second time. Click rewraps each paragraph
# of a docstring whole and keeps a paragraph that starts with a \b line as written.
HELP_WIDTH = 100  # the docstrings' own width; narrower terminals get paragraphs rewrapped
CONTEXT = {"max_content_width": HELP_WIDTH}
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}  # passed on to Beam
CONFIG_HELP = "TOML file of {name} settings (a [table] for nested ones)."
SET_HELP = "KEY=VALUE: any {name} setting, dotted for nested ones; wins over --config and flags."
VERBOSE_HELP = "Show the libraries' own INFO logging too (Beam's and its workers', the hub's)."
UNSET = ("DEFAULT", "DEFAULT_MAP")  # parameter sources of a flag that was not typed


@dataclasses.dataclass(frozen=True)
class Flag:
    """One config field as a command-line option."""

    key: str  # the config key, dotted for a flattened nested field: "finetune.lr"
    name: str  # the Python parameter name: "lr"
    hint: Any  # the field's type
    default: Any  # the field's default, or ... for a required option
    help: str  # the docstring under the field

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def declaration(self) -> str:
        """`--seq-len`; `--overwrite/--no-overwrite` for a bool (either way can be typed)."""
        if self.hint is bool:
            return f"{self.option}/--no-{self.option[2:]}"
        return self.option


def config_flags(
    cls: type, flatten: Sequence[str] = (), required: Sequence[str] = ()
) -> list[Flag]:
    """The options a command built from `cls` has, one per field (see the module docstring)."""
    flags = list(_flags(cls, "", flatten, required))
    names = [f.name for f in flags]
    if len(set(names)) != len(names) or {"config", "set_", "verbose"} & set(names):
        raise TypeError(f"{cls.__name__}: option names collide: {names}")
    return flags


def _flags(cls: type, prefix: str, flatten: Sequence[str], required: Sequence[str]) -> Iterator:
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            if f.name in flatten:
                yield from _flags(hint, f"{prefix}{f.name}.", (), required)
            continue  # reached with --set table.key=value
        if not _has_flag(hint):
            continue  # lists and the like: --set or the TOML file
        default = f.default
        if default is dataclasses.MISSING:
            factory = f.default_factory
            default = ... if factory is dataclasses.MISSING else factory()
        if f.name in required:
            default = ...
        yield Flag(prefix + f.name, f.name, hint, default, docs.get(f.name, ""))


def _has_flag(hint: Any) -> bool:
    """Whether typer makes an option of this field type (scalars, Literal choices, Optional)."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return len(inner) == 1 and _has_flag(inner[0])
    return typing.get_origin(hint) is Literal or hint in (str, int, float, bool)


def _option(flag: Flag) -> inspect.Parameter:
    info = typer.Option(flag.default, flag.declaration, help=flag.help)
    return _keyword(flag.name, flag.hint, info)


def config_command(
    cls: type,
    *,
    flatten: Sequence[str] = (),
    required: Sequence[str] = (),
    extra_args: bool = False,
) -> Callable[[Callable], Callable]:
    """Turn `func(<own parameters>, cfg)` into a typer command whose options are `cls`'s fields,
    plus --config and --set. `required`: fields that must be given as flags (their dataclass
    default means "unset"); `extra_args`: unknown options are kept in ctx.args (for Beam)."""
    flags = config_flags(cls, flatten, required)

    def decorate(func: Callable) -> Callable:
        hints = typing.get_type_hints(func)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in inspect.signature(func).parameters.values()
            if p.name != "cfg"
        ]
        # typer passes the click context to a parameter annotated typer.Context: the command
        # needs it to tell typed flags from defaults
        context = next((p.name for p in own if p.annotation is typer.Context), None)
        if context is None:
            positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
            own.insert(0, inspect.Parameter("ctx_", positional, annotation=typer.Context))
        if clash := {p.name for p in own} & {f.name for f in flags}:
            raise TypeError(f"{func.__name__}: parameters {clash} are also {cls.__name__} fields")
        config = typer.Option(None, "--config", help=CONFIG_HELP.format(name=cls.__name__))
        set_ = typer.Option([], "--set", help=SET_HELP.format(name=cls.__name__))
        verbose = typer.Option(False, "--verbose", help=VERBOSE_HELP)
        params = [
            *own,
            *(_option(f) for f in flags),
            _keyword("config", str | None, config),
            _keyword("set_", list[str], set_),
            _keyword("verbose", bool, verbose),
        ]

        def command(**kwargs: Any) -> Any:
            ctx = kwargs[context] if context else kwargs.pop("ctx_")
            path, overrides = kwargs.pop("config"), kwargs.pop("set_")
            if kwargs.pop("verbose"):
                logs.setup(verbose=True)
            given = []
            for flag in flags:
                value = kwargs.pop(flag.name)
                source = ctx.get_parameter_source(flag.name)
                if source is not None and source.name not in UNSET:
                    given.append((flag.key, value, flag.option))
            cfg = load_config(cls, path, overrides, flags=given)
            return func(**kwargs, cfg=cfg)

        for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(command, attribute, getattr(func, attribute))
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.config_class = cls  # type: ignore[attr-defined]
        command.config_flags = flags  # type: ignore[attr-defined]
        settings = {**CONTEXT, **(EXTRA_ARGS if extra_args else {})}
        command.context_settings = settings  # type: ignore[attr-defined]
        return command

    return decorate


def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    kind = inspect.Parameter.KEYWORD_ONLY
    return inspect.Parameter(name, kind, default=default, annotation=annotation)


def new_app(**settings: Any) -> typer.Typer:
    """A typer app with the settings every mdeberta command shares (click help, no completion)."""
    defaults = dict(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    return typer.Typer(**{**defaults, **settings}, context_settings=CONTEXT)


def add_command(app: typer.Typer, name: str | None, func: Callable) -> None:
    """Register a command function (its own context settings, else the shared ones)."""
    app.command(name, context_settings=getattr(func, "context_settings", CONTEXT))(func)


def run(app: typer.Typer, argv: Sequence[str] | None, prog_name: str) -> None:
    """Run `app` on argv (default: sys.argv) with the logging setup of every command (logs.py).
    Errors a user can fix (bad input, bad config, missing files, a missing extra), also when a
    Beam worker raised them, print one line naming the problem instead of a traceback;
    MDEBERTA_TRACEBACK=1 shows the traceback."""
    logs.setup()
    try:
        app(args=None if argv is None else list(argv), prog_name=prog_name)
    except Exception as e:
        message = user_error(e)
        if message is None or os.environ.get("MDEBERTA_TRACEBACK"):
            raise
        typer.echo(f"mdeberta: error: {message}", err=True)
        raise SystemExit(1) from None


# ConfigError, IncompleteArtifactError, ... derive from these; FloatingPointError: a NaN loss
USER_ERRORS = (ValueError, OSError, FloatingPointError)
# what the ImportError of a missing optional dependency names -> the extra that installs it
EXTRAS = {"gcsfs": "gcp", "apache_beam[gcp]": "gcp", "google": "gcp", "apitools": "gcp"}
BEAM_STEP = re.compile(r"( \[while running '[^']*'\])+$")  # Beam appends the failed step
# the last line of a traceback: `module.ErrorClass: message`
EXCEPTION_LINE = re.compile(r"([A-Za-z_][\w.]*)\.([A-Za-z_]\w*): (.*)")


def user_error(error: BaseException) -> str | None:
    """The one-line message of an error a user can fix, or None for a bug (a traceback)."""
    if isinstance(error, USER_ERRORS):
        return BEAM_STEP.sub("", str(error))
    if isinstance(error, ImportError):
        return missing_extra(error)
    return worker_error(error)


def missing_extra(error: ImportError) -> str | None:
    """An ImportError of an optional dependency, said with what to install; else None."""
    text = str(error)
    module = (error.name or "").split(".")[0]
    for name, extra in EXTRAS.items():
        if name == module or name in text:
            if "extra" in text:  # already says it
                return text
            return f'{text} (it comes with the {extra} extra: pip install -e ".[{extra}]")'
    if re.search(r"\binstall\b", text, re.I):  # says what: fsspec's "Install s3fs to access S3"
        return text
    return None


def worker_error(error: BaseException) -> str | None:
    """A user error raised in a Beam worker process: the runner re-raises it as a RuntimeError
    holding the worker's traceback as text, whose last line names the original class."""
    lines = str(error).strip().splitlines()
    if not isinstance(error, RuntimeError) or len(lines) < 2 or not lines[0].startswith("Tr"):
        return None
    match = EXCEPTION_LINE.fullmatch(lines[-1])
    if match is None:
        return None
    module, name, message = match.groups()
    cls = getattr(sys.modules.get(module), name, None)  # imported here if the worker's job is
    if isinstance(cls, type) and issubclass(cls, USER_ERRORS):
        return BEAM_STEP.sub("", message)
    return None


def standalone(func: Callable, prog_name: str) -> Callable[[Sequence[str] | None], None]:
    """`main(argv)` running one command alone, e.g. for `python -m mdeberta.pipelines.clean`."""
    app = new_app()
    add_command(app, None, func)

    def main(argv: Sequence[str] | None = None) -> None:
        run(app, argv, prog_name)

    return main
