"""Typed configuration: every settings file (``labrador.toml`` sections, training YAML, mixing recipes, pipelines)
is validated by pydantic against frozen dataclasses, and every failure reads the same way.

Why pydantic and one formatter: four hand-written validators each had their own idea of "unknown key" and
"wrong type". Here a config is a dataclass whose annotations (the aliases below) carry the rules; pydantic
checks them, and :func:`describe` turns its first error into our one line: file, key path, what is wrong,
and a guess for a misspelt key. Rules that span fields live in ``__post_init__`` and raise :class:`Invalid`
naming their key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Sequence
from functools import cache
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError

from .errors import ConfigError

__all__ = ["FORBID_EXTRA", "ConfigError", "Concurrency", "Count", "Deadline", "Epochs", "Few", "Flag", "Fraction",
           "IdText", "InFlight", "Invalid", "Name", "Number", "Positive", "Rate", "Retries", "ScoreDelta", "Seconds",
           "Steps", "Text", "Texts", "Tokens", "describe", "errors_of", "first_error", "validate"]

FORBID_EXTRA: ClassVar = ConfigDict(extra="forbid")  # a dataclass's ``__pydantic_config__``


class Invalid(ValueError):
    """A rule across fields broken (raised in ``__post_init__``): ``key`` is the field the message is about."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _id_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# the field types a config may use (all strict: "3" is not a number, true is not 1)
Flag = Annotated[bool, Strict()]
Count = Annotated[int, Strict(), Field(ge=0, lt=2**63)]  # a whole number, 0 or more
Positive = Annotated[int, Strict(), Field(ge=1, lt=2**63)]  # a whole number, 1 or more
Number = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]  # a finite number, 0 or more
Fraction = Annotated[float, Strict(), Field(ge=0, lt=1, allow_inf_nan=False)]  # in [0, 1)
ScoreDelta = Annotated[float, Strict(), Field(ge=0, le=9, allow_inf_nan=False)]  # a move on a judge's 1-10 scale
Rate = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]  # a share of events, in [0, 1]
Text = Annotated[str, Strict()]
Name = Annotated[str, Strict(), Field(min_length=1)]  # a non-empty string
IdText = Annotated[str, BeforeValidator(_id_text), Strict()]  # an id written without quotes is the same text
Texts = tuple[Text, ...]  # a list of strings
# bounded counts and durations: a huge but finite value (retries = 1e8, a back-off of 1e308 s, 2**62 epochs)
# would hang a run instead of failing it, so each kind of number has a ceiling no real setting reaches
Retries = Annotated[int, Strict(), Field(ge=0, le=100)]  # tries again after a failure
Seconds = Annotated[float, Strict(), Field(ge=0, le=2_592_000, allow_inf_nan=False)]  # a wait or deadline, <= 30 days
Concurrency = Annotated[int, Strict(), Field(ge=0, le=100_000)]  # requests in flight, batch sizes
InFlight = Annotated[int, Strict(), Field(ge=1, le=100_000)]  # requests in flight where none would hang the run
Deadline = Annotated[float, Strict(), Field(gt=0, le=2_592_000, allow_inf_nan=False)]  # a timeout: never 0
Tokens = Annotated[int, Strict(), Field(ge=1, le=1_048_576)]  # a length in tokens (a million at most)
Epochs = Annotated[int, Strict(), Field(ge=1, le=10_000)]  # passes over a data set
Steps = Annotated[int, Strict(), Field(ge=0, le=100_000_000)]  # optimizer steps
Few = Annotated[int, Strict(), Field(ge=0, le=10)]  # a handful (seeds held out per leaf)


@cache
def _adapter(cls: Any) -> TypeAdapter:
    return TypeAdapter(cls)


def validate(cls: Any, data: Any, source: str, prefix: str = "", *,
             error: type[Exception] = ConfigError) -> Any:
    """``data`` (a parsed mapping) as an instance of ``cls``; otherwise ``error`` (:class:`ConfigError` or the
    caller's own subclass) naming ``source`` and every wrong key, one line each. ``prefix``: where the mapping
    sits in the file (``[bot] `` for a TOML section)."""
    try:
        return _adapter(cls).validate_python(data)
    except ValidationError as exc:
        raise error(describe(exc, cls, source, prefix)) from None


def describe(exc: ValidationError, cls: Any, source: str, prefix: str = "") -> str:
    """Every error, one line each (unknown keys first: a typo often explains the rest), as
    ``SOURCE: PREFIX.key.path: what is wrong``: a file with three mistakes is mended in one go."""
    lines = []
    for loc, what in errors_of(exc, cls):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        where = f"{prefix}{path}" if path else (prefix.strip() or "top level")
        lines.append(f"{source}: {where}: {what}")
    return "\n".join(dict.fromkeys(lines))


def errors_of(exc: ValidationError, cls: Any) -> list[tuple[list[Any], str]]:
    """Each error's place (keys and list indexes) and what is wrong there, in our words; unknown keys first."""
    errors = exc.errors(include_url=False)
    ordered = [e for e in errors if e["type"] in _UNKNOWN] + [e for e in errors if e["type"] not in _UNKNOWN]
    return [_explain(e, cls) for e in ordered]


def first_error(exc: ValidationError, cls: Any) -> tuple[list[Any], str]:
    """Where the first error is and what is wrong there (an unknown key before any other)."""
    return errors_of(exc, cls)[0]


def _explain(error: Any, cls: Any) -> tuple[list[Any], str]:
    loc = list(error["loc"])
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    cause = ctx.get("error")
    if isinstance(cause, Invalid):
        loc.append(cause.key)
    if kind in _UNKNOWN:
        known = keys_at(cls, loc[:-1])
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
        what = f"unknown key; did you mean '{guess[0]}'?" if guess else f"unknown key; known keys: {', '.join(known)}"
    elif kind in ("missing", "missing_argument"):
        what = "required key is missing"
    else:
        what = _what(kind, ctx, value, cause)
    return loc, what


_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")


def _bound(n: Any) -> str:
    """A bound as written in our docs: large powers of two as ``2**32``."""
    return f"2**{n.bit_length() - 1}" if isinstance(n, int) and n >= 2**16 and n & (n - 1) == 0 else str(n)


def _what(kind: str, ctx: dict[str, Any], value: Any, cause: Any) -> str:
    got = f", got {value!r}"
    if kind == "value_error" and cause is not None:
        return str(cause)
    if kind == "bool_type":
        return "must be true or false" + got
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return "must be a whole number" + got
    if kind in ("float_type", "float_parsing"):
        return "must be a number" + got
    if kind == "finite_number":
        return "must be a finite number" + got
    if kind == "string_type":
        return "must be a string" + got
    if kind in ("tuple_type", "list_type"):
        return "must be a list" + got
    if kind in ("dataclass_type", "dict_type", "model_type"):
        return "must be a mapping (key: value)" + got
    if kind == "greater_than_equal":
        return ("must be 0 or more" if ctx["ge"] == 0 else f"must be at least {ctx['ge']}") + got
    if kind == "greater_than":
        return f"must be above {ctx['gt']}" + got
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}" + got
    if kind == "less_than":
        return f"must be below {_bound(ctx['lt'])}" + got
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}" + got
    if kind == "too_short":
        return "must be a non-empty list" if ctx.get("min_length") == 1 else f"needs at least {ctx['min_length']} items"
    if kind == "too_long":
        return f"takes at most {ctx['max_length']} items"
    return f"{kind.replace('_', ' ')}{got}"  # pragma: no cover - a type we do not use


def _inner(annotation: Any) -> list[Any]:
    """The types an annotation may hold a mapping of (through Annotated, unions, tuples and lists)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _inner(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, tuple, list):
        return [t for a in typing.get_args(annotation) if a is not Ellipsis for t in _inner(a)]
    return [annotation]


def _field_alias(annotation: Any) -> str | None:
    if typing.get_origin(annotation) is Annotated:
        for meta in typing.get_args(annotation)[1:]:
            if getattr(meta, "alias", None):
                return meta.alias
    return None


def _fields(cls: Any) -> dict[str, Any]:
    """Key as written in a file -> its annotation, for a dataclass (aliases first)."""
    if not dataclasses.is_dataclass(cls):
        return {}
    hints = typing.get_type_hints(cls, include_extras=True)
    return {(_field_alias(hints[f.name]) or f.name): hints[f.name] for f in dataclasses.fields(cls) if f.init}


def keys_at(cls: Any, loc: Sequence[Any]) -> list[str]:
    """The keys a file may write at ``loc`` inside ``cls`` (for the did-you-mean of an unknown key)."""
    candidates = [cls]
    for part in loc:
        if isinstance(part, int):
            continue
        candidates = [t for c in candidates for t in _inner(_fields(c).get(str(part)))]
    return sorted({k for c in candidates for k in _fields(c)})
