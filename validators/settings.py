"""One loader for every section of ``labrador.toml``: ``[check]``, ``[documents]``, ``[teacher]``, ``[generate]``,
``[bot]``, ``[nightly]``...

Why one: each section used to have its own loader with its own type rules. Here a section is a frozen
dataclass whose annotations give the types, checked by pydantic through :mod:`labrador.validators.typed`; unknown keys,
wrong types and bad sections get the same message everywhere (file, section, key, fix). This module knows
no section of the packages above it: they declare theirs as entry points (``labrador.settings``), whose
*names* are read without importing them.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from collections.abc import Iterable
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["ConfigError", "check_sections", "coerce", "known_sections", "read_toml", "section_values"]

OWN_SECTIONS = ("check", "documents")


@cache
def _read(path: str, mtime_ns: int) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}. Fix the syntax or delete the file.") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read settings: {exc.strerror}") from None


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file (read once per modification)."""
    try:
        mtime = Path(path).stat().st_mtime_ns
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read settings: {exc.strerror}") from None
    return _read(str(path), mtime)


def known_sections() -> set[str]:
    """Ours plus every section an installed package declares (entry point group ``labrador.settings``)."""
    return set(OWN_SECTIONS) | {ep.name for ep in entry_points(group="labrador.settings")}


def check_sections(path: Path) -> None:
    """An unknown section (a typo such as ``[generte]``) is an error, never silently ignored."""
    known = known_sections()
    for section in read_toml(path):
        if section not in known:
            guess = difflib.get_close_matches(section, sorted(known), n=1)
            fix = f"did you mean [{guess[0]}]?" if guess else f"known sections: {', '.join(sorted(known))}"
            raise ConfigError(f"{path}: unknown section [{section}]; {fix}")


def _declared(cls: type) -> dict[str, Any]:
    """Every settings key's type as ``cls`` declares it with :mod:`labrador.validators.typed`'s aliases
    (``Retries``, ``Seconds``, ``Flag``...) or ``Literal[...]`` for a choice, resolved by name: a section module
    need not import pydantic for them (annotations are text under ``from __future__ import annotations``)."""
    import sys
    import typing

    from . import typed

    return typing.get_type_hints(cls, globalns={**vars(typed), "Literal": typing.Literal,
                                                **vars(sys.modules[cls.__module__])}, include_extras=True)


def _strict(hint: Any) -> bool:
    """A declared type that pydantic checks strictly: an alias (``Annotated[..., Strict()]``), a choice, or
    unions and lists of those (a bare ``int`` would take ``"3"``, a bare ``bool`` would take ``"yes"``)."""
    import types
    import typing

    from pydantic import Strict

    origin = typing.get_origin(hint)
    if hint is type(None):
        return True
    if origin is typing.Literal:
        return True
    if origin is typing.Annotated:
        return any(isinstance(m, Strict) for m in typing.get_args(hint)[1:])
    if origin in (typing.Union, types.UnionType, tuple):
        return all(_strict(a) for a in typing.get_args(hint) if a is not Ellipsis)
    return False


@cache
def _schema(cls: type, exclude: frozenset[str]) -> type:
    """``cls``'s settings keys as a dataclass pydantic validates: every key optional, typed as declared (an
    alias of :mod:`labrador.validators.typed`, which carries its bounds, or a ``Literal``)."""
    from .typed import FORBID_EXTRA

    declared = _declared(cls)
    keys = [f.name for f in dataclasses.fields(cls) if f.name not in exclude and f.init]
    loose = [k for k in keys if not _strict(declared[k])]
    if loose:  # a programming error, caught by the first test that loads the section
        raise TypeError(f"{cls.__name__}: declare {', '.join(loose)} with an alias of labrador.validators.typed "
                        "(Flag, Count, Number, Text, Texts...) or a Literal")
    spec = [(k, declared[k], dataclasses.field(default=None)) for k in keys]
    return dataclasses.make_dataclass(f"{cls.__name__}Keys", spec, frozen=True,
                                      namespace={"__pydantic_config__": FORBID_EXTRA})


def coerce(where: str, cls: type, key: str, value: Any, *, from_text: bool = False) -> Any:
    """One value of ``cls``'s key ``key``, checked against its declared type. ``from_text``: it came from an
    environment variable, so numbers may be written as text."""
    from pydantic import ValidationError

    from .typed import _adapter, first_error

    adapter = _adapter(_declared(cls)[key])
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        error = exc
    if from_text and isinstance(value, str):  # "3" is text in the environment, 3 to the key's type
        number = _number(value)
        if number is not None:
            try:
                return adapter.validate_python(number)
            except ValidationError as exc:
                error = exc
    raise ConfigError(f"{where} {key}: {first_error(error, None)[1]}") from None


def _number(text: str) -> int | float | None:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return None


def section_values(path: Path | None, section: str, defaults: Any, *, exclude: Iterable[str] = (),
                   paths: Iterable[str] = (), refuse: Any = None, legacy: Iterable[str] = ()) -> dict[str, Any]:
    """The keys of ``[section]`` in ``path`` (None or missing: none), each checked against the type the
    dataclass of ``defaults`` declares for it. ``exclude``: fields that are not settings keys;
    ``paths``: keys holding paths, made absolute against the file's folder; ``refuse(key)`` may return a
    message for a key that must never be in a file (secrets); ``legacy``: deprecated keys another loader reads
    (skipped here)."""
    if path is None or not Path(path).is_file():
        return {}
    table = read_toml(Path(path)).get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{section}] must be a table")
    skipped = set(legacy)
    table = {k: v for k, v in table.items() if k not in skipped}
    for key in table:
        if refuse is not None and (why := refuse(key)):
            raise ConfigError(f"{path}: [{section}] {key}: {why}")
    if not table:
        return {}  # nothing to check: the validation library is not even imported (a fast `labrador check`)
    from .typed import validate

    checked = validate(_schema(type(defaults), frozenset(exclude)), table, str(path), f"[{section}] ")
    values = {key: getattr(checked, key) for key in table}
    for key in paths:
        if values.get(key) and not Path(values[key]).expanduser().is_absolute() and not values[key].startswith("~"):
            values[key] = str((Path(path).parent / values[key]).resolve())
    return values
