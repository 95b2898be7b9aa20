"""One loader for every section of ``labrador.toml``: ``[check]``, ``[documents]``, ``[generate]``, ``[bot]``,
``[train]``, ``[nightly]``...

Why one: each section used to have its own loader with its own type rules. Here a section is a frozen
dataclass whose defaults give the types; unknown keys, wrong types and bad sections get the same message
everywhere (file, section, key, fix). This module knows no section of the packages above it: they declare
theirs as entry points (``labrador.settings``), whose *names* are read without importing them.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Iterable
from dataclasses import MISSING, fields
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

OWN_SECTIONS = ("check", "documents")


class ConfigError(Exception):
    """A settings file that cannot be used; the message names the file, the section, the key and the fix."""


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


def _type_error(where: str, key: str, want: str, value: Any) -> ConfigError:
    return ConfigError(f"{where} {key} must be {want}, got {value!r}")


def coerce(where: str, key: str, value: Any, default: Any, *, from_text: bool = False) -> Any:
    """``value`` checked against the type of ``default``. ``from_text``: it came from an environment variable,
    so numbers may be written as text."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _type_error(where, key, "true or false", value)
        return value
    if isinstance(default, int | float):
        if isinstance(value, str) and from_text:
            try:
                value = type(default)(value)
            except ValueError:
                raise _type_error(where, key, "a number", value) from None
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                isinstance(default, int) and not isinstance(value, int)):
            raise _type_error(where, key, "a whole number" if isinstance(default, int) else "a number", value)
        if not math.isfinite(value):
            raise _type_error(where, key, "a finite number", value)
        if value < 0:
            raise _type_error(where, key, "0 or more", value)
        if isinstance(value, int) and value >= 2**63:
            raise _type_error(where, key, "below 2**63", value)
        return type(default)(value)
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _type_error(where, key, "a list of strings", value)
        return tuple(value)
    if default is None or isinstance(default, str):
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # an id written without quotes (app_id = 12345) means the same text
        if not isinstance(value, str):
            raise _type_error(where, key, "a string", value)
        return value
    raise ConfigError(f"{where} {key} has a type settings files cannot hold")  # pragma: no cover


def section_values(path: Path | None, section: str, defaults: Any, *, exclude: Iterable[str] = (),
                   paths: Iterable[str] = (), refuse: Any = None) -> dict[str, Any]:
    """The keys of ``[section]`` in ``path`` (None or missing: none), each checked against the type of its
    default in the dataclass instance ``defaults``. ``exclude``: fields that are not settings keys;
    ``paths``: keys holding paths, made absolute against the file's folder; ``refuse(key)`` may return a
    message for a key that must never be in a file (secrets)."""
    if path is None or not Path(path).is_file():
        return {}
    table = read_toml(Path(path)).get(section, {})
    where = f"{path}: [{section}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    skip = set(exclude)
    known = {f.name: f for f in fields(defaults) if f.name not in skip}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if refuse is not None and (why := refuse(key)):
            raise ConfigError(f"{where} {key}: {why}")
        if key not in known:
            guess = difflib.get_close_matches(str(key), sorted(known), n=1)
            fix = f"did you mean '{guess[0]}'? " if guess else ""
            raise ConfigError(f"{path}: unknown key '{key}' in [{section}]; {fix}known keys: {', '.join(known)}")
        f = known[key]
        default = getattr(defaults, key) if f.default is not MISSING or f.default_factory is not MISSING else None
        values[key] = coerce(where, key, value, default)
    for key in paths:
        if values.get(key) and not Path(values[key]).expanduser().is_absolute() and not values[key].startswith("~"):
            values[key] = str((Path(path).parent / values[key]).resolve())
    return values
