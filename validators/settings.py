"""One loader for every section of ``labrador.toml``: ``[check]``, ``[documents]``, ``[teacher]``, ``[generate]``,
``[bot]``, ``[nightly]``...

Why one: each section used to have its own loader with its own type rules. Here a section is a frozen
dataclass whose defaults give the types, checked by pydantic through :mod:`labrador.validators.typed`; unknown keys,
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


def _type_for(default: Any) -> Any:
    """A settings key's type, from its default (bool, a whole number, a number, strings, a string)."""
    from .typed import Count, Flag, IdText, Number, Texts

    if isinstance(default, bool):
        return Flag
    if isinstance(default, int):
        return Count
    if isinstance(default, float):
        return Number
    if isinstance(default, tuple):
        return Texts
    return IdText | None


def _declared(cls: type) -> dict[str, Any]:
    """The field types ``cls`` declares with :mod:`labrador.validators.typed`'s bounded aliases (``Retries``,
    ``Seconds``...), resolved by name: a section module need not import pydantic for them (annotations are
    text under ``from __future__ import annotations``)."""
    import sys
    import typing

    from . import typed

    wanted = [n for n, text in getattr(cls, "__annotations__", {}).items()
              if text in typed.__all__ or str(text).startswith("Literal[")]  # a choice: Literal["a", "b"]
    if not wanted:
        return {}
    hints = typing.get_type_hints(cls, globalns={**vars(typed), "Literal": typing.Literal,
                                                 **vars(sys.modules[cls.__module__])},
                                  include_extras=True)
    return {name: hints[name] for name in wanted}


@cache
def _schema(cls: type, exclude: frozenset[str]) -> type:
    """``cls``'s settings keys as a dataclass pydantic validates: every key optional, typed as declared (a
    :mod:`labrador.validators.typed` alias, which carries its bounds) or else by its default."""
    from .typed import FORBID_EXTRA

    defaults = cls()
    declared = _declared(cls)
    spec = [(f.name, declared.get(f.name) or _type_for(getattr(defaults, f.name)), dataclasses.field(default=None))
            for f in dataclasses.fields(cls) if f.name not in exclude and f.init]
    return dataclasses.make_dataclass(f"{cls.__name__}Keys", spec, frozen=True,
                                      namespace={"__pydantic_config__": FORBID_EXTRA})


def coerce(where: str, key: str, value: Any, default: Any, *, from_text: bool = False) -> Any:
    """One value checked against the type of ``default``. ``from_text``: it came from an environment variable,
    so numbers may be written as text."""
    from pydantic import ValidationError

    from .typed import _adapter, first_error

    if from_text and isinstance(value, str) and isinstance(default, int | float) and not isinstance(default, bool):
        try:
            value = type(default)(value)
        except ValueError:
            pass  # the type check below names it
    try:
        return _adapter(_type_for(default)).validate_python(value)
    except ValidationError as exc:
        raise ConfigError(f"{where} {key}: {first_error(exc, None)[1]}") from None


def section_values(path: Path | None, section: str, defaults: Any, *, exclude: Iterable[str] = (),
                   paths: Iterable[str] = (), refuse: Any = None, legacy: Iterable[str] = ()) -> dict[str, Any]:
    """The keys of ``[section]`` in ``path`` (None or missing: none), each checked against the type of its
    default in the dataclass instance ``defaults``. ``exclude``: fields that are not settings keys;
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
