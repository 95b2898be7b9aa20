"""The step framework: rows, the registry, ``register`` and ``derive`` (no step types here)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine import Context

Row = dict[str, Any]
StepFn = Callable[[dict[str, Any], list[Row], "Context"], Awaitable[list[Row]]]


@dataclass(frozen=True)
class StepType:
    """A registered step: its function and the configuration keys it accepts."""

    name: str
    run: StepFn
    required: frozenset[str]
    optional: frozenset[str]


REGISTRY: dict[str, StepType] = {}


def register(name: str, *, required: tuple[str, ...] = (),
             optional: tuple[str, ...] = ()) -> Callable[[StepFn], StepFn]:
    """Decorator: make ``fn`` available to pipeline files as ``type: name``."""

    def deco(fn: StepFn) -> StepFn:
        REGISTRY[name] = StepType(name, fn, frozenset(required), frozenset(optional) | {"type", "name"})
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
