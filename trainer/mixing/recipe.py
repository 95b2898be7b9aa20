"""Mixing recipes: which leaves train in which phase, how much of each, and what is replayed.

A recipe is data (YAML), validated here into frozen dataclasses so the mixing core never sees a
malformed one. The format is documented in ``trainer/recipes/README.md``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DEFAULT_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "default.yaml"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # phase names become file names


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and the offending key."""


@dataclass(frozen=True)
class Group:
    """Leaves of one phase chosen by path globs; capped per leaf, then scaled by ``ratio``."""

    name: str
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    max_per_leaf: int | None = None
    ratio: float = 1.0


@dataclass(frozen=True)
class Replay:
    """Rows mixed into a phase from an earlier phase (``phase``) or a precomputed JSONL (``dataset``)."""

    phase: str | None = None
    dataset: str | None = None
    fraction: float = 1.0
    include: tuple[str, ...] = ()  # empty: every leaf of the source
    exclude: tuple[str, ...] = ()
    max_per_leaf: int | None = None
    optional: bool = False  # datasets only: a missing file is reported, not an error

    @property
    def source(self) -> str:
        return f"phase:{self.phase}" if self.phase else f"dataset:{self.dataset}"


@dataclass(frozen=True)
class Phase:
    name: str
    groups: tuple[Group, ...]
    replay: tuple[Replay, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Recipe:
    phases: tuple[Phase, ...]
    source: str = "<memory>"  # where it came from (manifest provenance)
    sha256: str = ""


@lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def glob_match(pattern: str, leaf: str) -> bool:
    """Does ``pattern`` select ``leaf``? A pattern selects the folders it matches *and everything below
    them*, so a branch (``knowledge``, ``compositional_skills/writing``) selects its whole subtree."""
    regex = _glob_regex(pattern.strip("/"))
    parts = leaf.strip("/").split("/")
    return any(regex.fullmatch("/".join(parts[:k])) for k in range(1, len(parts) + 1))


def selects(include: Sequence[str], exclude: Sequence[str], leaf: str) -> bool:
    """Included (or no include list) and not excluded."""
    inside = not include or any(glob_match(p, leaf) for p in include)
    return inside and not any(glob_match(p, leaf) for p in exclude)


def _globs(where: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip("/") for v in value):
        raise RecipeError(f"{where}: must be a list of path globs such as 'knowledge/**'")
    return tuple(v.strip("/") for v in value)


def _number(where: str, value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise RecipeError(f"{where}: must be a number >= 0")
    return float(value)


def _cap(where: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecipeError(f"{where}: must be a whole number >= 0 (or null for no cap)")
    return value


def _keys(where: str, obj: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise RecipeError(f"{where}: must be a mapping")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return obj


def _group(where: str, obj: Any) -> Group:
    g = _keys(where, obj, {"name", "include", "exclude", "max_per_leaf", "ratio"})
    name = g.get("name")
    if not isinstance(name, str) or not name:
        raise RecipeError(f"{where}.name: required, a non-empty string")
    include = _globs(f"{where}.include", g.get("include"))
    if not include:
        raise RecipeError(f"{where}.include: required: the leaf folders (globs) of this group")
    return Group(name, include, _globs(f"{where}.exclude", g.get("exclude")),
                 _cap(f"{where}.max_per_leaf", g.get("max_per_leaf")), _number(f"{where}.ratio", g.get("ratio"), 1.0))


def _replay(where: str, obj: Any, earlier: list[str]) -> Replay:
    r = _keys(where, obj, {"phase", "dataset", "fraction", "include", "exclude", "max_per_leaf", "optional"})
    phase, dataset = r.get("phase"), r.get("dataset")
    if (phase is None) == (dataset is None):
        raise RecipeError(f"{where}: give exactly one of 'phase' (an earlier phase) or 'dataset' (a JSONL path)")
    if phase is not None and phase not in earlier:
        raise RecipeError(f"{where}.phase: {phase!r} is not an earlier phase; earlier phases: {earlier}")
    if dataset is not None and (not isinstance(dataset, str) or not dataset.strip()):
        raise RecipeError(f"{where}.dataset: must be a path to a JSONL file")
    optional = r.get("optional", False)
    if not isinstance(optional, bool):
        raise RecipeError(f"{where}.optional: must be true or false")
    return Replay(phase, dataset, _number(f"{where}.fraction", r.get("fraction"), 1.0),
                  _globs(f"{where}.include", r.get("include")), _globs(f"{where}.exclude", r.get("exclude")),
                  _cap(f"{where}.max_per_leaf", r.get("max_per_leaf")), optional)


def parse_recipe(data: Any, source: str = "<memory>", sha256: str = "") -> Recipe:
    """Validate a loaded YAML document into a :class:`Recipe`."""
    top = _keys(source, data, {"version", "description", "phases"})
    if top.get("version") != 1:
        raise RecipeError(f"{source}: 'version: 1' is required (the only recipe format so far)")
    raw = top.get("phases")
    if not isinstance(raw, list) or not raw:
        raise RecipeError(f"{source}: 'phases' must be a non-empty list")
    phases: list[Phase] = []
    for i, obj in enumerate(raw):
        where = f"{source}: phases[{i}]"
        p = _keys(where, obj, {"name", "description", "groups", "replay"})
        name = p.get("name")
        if not isinstance(name, str) or not _NAME.match(name) or name in [q.name for q in phases]:
            raise RecipeError(f"{where}.name: a unique name of letters, digits, '_', '-', '.' (it names the file)")
        groups = p.get("groups") or []
        replay = p.get("replay") or []
        if not isinstance(groups, list) or not isinstance(replay, list):
            raise RecipeError(f"{where}: 'groups' and 'replay' must be lists")
        phases.append(Phase(name, tuple(_group(f"{where}.groups[{j}]", g) for j, g in enumerate(groups)),
                            tuple(_replay(f"{where}.replay[{j}]", r, [q.name for q in phases])
                                  for j, r in enumerate(replay)), str(p.get("description") or "")))
    return Recipe(tuple(phases), source, sha256)


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
