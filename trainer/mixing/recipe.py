"""Mixing recipes: which leaves train in which phase, how much of each, and what is replayed.

A recipe is data (YAML), validated here into frozen dataclasses so the mixing core never sees a
malformed one. The format is documented in ``trainer/recipes/README.md``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BeforeValidator, Field, Strict

from labrador.validators.leafglob import glob_match, selects
from labrador.validators.typed import FORBID_EXTRA, ConfigError, Count, Flag, Invalid, Name, Number, Text, validate

__all__ = ["DEFAULT_RECIPE", "Group", "Phase", "Recipe", "RecipeError", "Replay", "glob_match", "load_recipe",
           "parse_recipe", "selects"]

DEFAULT_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "default.yaml"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # phase names become file names


class RecipeError(ConfigError, ValueError):
    """A recipe that cannot be used; the message names the file and the offending key."""


def _globs(value: Any) -> Any:
    """One glob or a list of them; a leading or trailing ``/`` is dropped."""
    if isinstance(value, str):
        value = [value]
    return [v.strip("/") if isinstance(v, str) else v for v in value] if isinstance(value, list) else value


Globs = Annotated[tuple[Annotated[str, Strict(), Field(min_length=1)], ...], BeforeValidator(_globs)]
Cap = Count | None  # a whole number, or null for no cap


@dataclass(frozen=True)
class Group:
    """Leaves of one phase chosen by path globs; capped per leaf, then scaled by ``ratio``."""

    __pydantic_config__: ClassVar = FORBID_EXTRA
    name: Name
    include: Annotated[Globs, Field(min_length=1)]  # the leaf folders (globs) of this group
    exclude: Globs = ()
    max_per_leaf: Cap = None
    ratio: Number = 1.0


@dataclass(frozen=True)
class Replay:
    """Rows mixed into a phase from an earlier phase (``phase``) or a precomputed JSONL (``dataset``)."""

    __pydantic_config__: ClassVar = FORBID_EXTRA
    phase: Text | None = None
    dataset: Text | None = None
    fraction: Number = 1.0
    include: Globs = ()  # empty: every leaf of the source
    exclude: Globs = ()
    max_per_leaf: Cap = None
    optional: Flag = False  # datasets only: a missing file is reported, not an error

    def __post_init__(self) -> None:
        if (self.phase is None) == (self.dataset is None):
            raise Invalid("phase", "give exactly one of 'phase' (an earlier phase) or 'dataset' (a JSONL path)")
        if self.dataset is not None and not self.dataset.strip():
            raise Invalid("dataset", "must be a path to a JSONL file")

    @property
    def source(self) -> str:
        return f"phase:{self.phase}" if self.phase else f"dataset:{self.dataset}"


@dataclass(frozen=True)
class Phase:
    __pydantic_config__: ClassVar = FORBID_EXTRA
    name: Text
    groups: tuple[Group, ...] = ()
    replay: tuple[Replay, ...] = ()
    description: Text = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise Invalid("name", "a unique name of letters, digits, '_', '-', '.' (it names the file)")


@dataclass(frozen=True)
class Recipe:
    __pydantic_config__: ClassVar = FORBID_EXTRA
    phases: Annotated[tuple[Phase, ...], Field(min_length=1)]
    source: Text = "<memory>"  # where it came from (manifest provenance)
    sha256: Text = ""
    version: Literal[1] = 1  # the only recipe format so far
    description: Text = ""

    def __post_init__(self) -> None:
        earlier: list[str] = []
        for i, phase in enumerate(self.phases):
            if phase.name in earlier:
                raise Invalid(f"phases[{i}].name", "a unique name of letters, digits, '_', '-', '.' (it names "
                              "the file)")
            for j, r in enumerate(phase.replay):
                if r.phase is not None and r.phase not in earlier:
                    raise Invalid(f"phases[{i}].replay[{j}].phase", f"{r.phase!r} is not an earlier phase; earlier "
                                  f"phases: {earlier}")
            earlier.append(phase.name)


def parse_recipe(data: Any, source: str = "<memory>", sha256: str = "") -> Recipe:
    """Validate a loaded YAML document into a :class:`Recipe`."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: must be a mapping (version: 1, phases: ...)")
    if data.get("version") != 1:
        raise RecipeError(f"{source}: 'version: 1' is required (the only recipe format so far)")
    return validate(Recipe, {**data, "source": source, "sha256": sha256}, source, error=RecipeError)


def load_recipe(path: Path | str | None = None) -> Recipe:
    """Read and validate a recipe file (default: the packaged ``default.yaml``)."""
    path = Path(path) if path is not None else DEFAULT_RECIPE
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    return parse_recipe(data, str(path), hashlib.sha256(raw).hexdigest())
