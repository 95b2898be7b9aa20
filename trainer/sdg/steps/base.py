"""The step framework: rows, the registry, ``register``, ``derive`` and the :class:`Context` a step is given
(no step types here).

Why a protocol: steps depend on what a context offers, not on the engine that builds one, so the engine
imports the steps and nothing imports back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from labrador.trainer.teachers.base import Request, Teacher

from ..leaf import LeafSpec
from ..limits import Limits
from ..prompting import Prompt
from ..stats import LeafStats, StepStats

Row = dict[str, Any]


class Context(Protocol):
    """What a step may use: the leaf, its documents, the caps, the teacher (through :meth:`ask`), counters."""

    leaf: LeafSpec
    teacher: Teacher
    documents: Sequence[tuple[str, bytes]]
    limits: Limits
    stats: LeafStats
    step: StepStats  # the running step's counters

    @property
    def pipeline_label(self) -> str: ...

    def drop(self, reason: str, count: int = 1) -> None: ...

    def cap(self, rows: list[Row], limit: int | None = None) -> list[Row]: ...

    def prompt(self, name: str) -> Prompt: ...

    def request(self, prompt: Prompt, row: Row, *, n: int | None = None) -> Request | None: ...

    async def ask(self, requests: Sequence[Request | None]) -> list[list[str] | None]: ...


StepFn = Callable[[dict[str, Any], list[Row], Context], Awaitable[list[Row]]]


@dataclass(frozen=True)
class StepType:
    """A registered step: its function and the configuration keys it accepts."""

    name: str
    run: StepFn
    required: frozenset[str]
    optional: frozenset[str]
    bounds: Mapping[str, tuple[type, float, float]] = field(default_factory=dict)  # key -> (type, lowest, highest)

    def problem(self, key: str, value: Any) -> str | None:
        """Why ``value`` is no good for the numeric ``key`` (a file sets it: bounded, so it cannot hang a run)."""
        if key not in self.bounds:
            return None
        kind, low, high = self.bounds[key]
        if isinstance(value, bool) or not isinstance(value, int if kind is int else (int, float)):
            return f"must be a {'whole number' if kind is int else 'number'}, got {value!r}"
        if not low <= value <= high:
            return f"must be between {low} and {high}, got {value!r}"
        return None


REGISTRY: dict[str, StepType] = {}


def register(name: str, *, required: tuple[str, ...] = (), optional: tuple[str, ...] = (),
             bounds: Mapping[str, tuple[type, float, float]] | None = None) -> Callable[[StepFn], StepFn]:
    """Decorator: make ``fn`` available to pipeline files as ``type: name``; ``bounds``: the numeric keys'
    (type, lowest, highest)."""

    def deco(fn: StepFn) -> StepFn:
        REGISTRY[name] = StepType(name, fn, frozenset(required), frozenset(optional) | {"type", "name"},
                                  dict(bounds or {}))
        return fn

    return deco


def derive(row: Row, suffix: str = "", **updates: Any) -> Row:
    """A child row: the parent's fields plus ``updates``, with its own copy of the provenance.

    ``suffix`` extends the row's lineage id (``_id``) when one row fans out into several.
    """
    meta = row.get("_meta", {})
    child = {**row, **updates}
    if suffix:
        child["_id"] = f"{row['_id']}.{suffix}"
    child["_meta"] = {"prompts": dict(meta.get("prompts", {})), "scores": dict(meta.get("scores", {}))}
    return child
