"""``dedup``: drop rows whose ``field`` (or fields) repeat an earlier kept row, exactly or nearly.

``group_by`` compares rows only within the same value of other fields: a grounded question is a
duplicate of another question *on the same context*; joining a long shared context into the compared
text would make every sibling question look like a near-duplicate of the first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..near_dup import NearDuplicates
from .base import Context, Row, register


def _fields(value: Any) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _duplicates(items: list[tuple[str, str]], threshold: float, num_perm: int, shingle: int) -> list[bool]:
    groups: dict[str, NearDuplicates] = {}
    out = []
    for group, text in items:
        seen = groups.get(group)
        if seen is None:
            seen = groups[group] = NearDuplicates(threshold, num_perm, shingle)
        out.append(seen.is_duplicate(text))
    return out


@register("dedup", required=("field",), optional=("threshold", "num_perm", "shingle", "group_by"),
          bounds={"threshold": (float, 0.0, 1.0), "num_perm": (int, 16, 1024), "shingle": (int, 1, 64)})
async def run(step: dict[str, Any], rows: list[Row], ctx: Context) -> list[Row]:
    fields, group_by = _fields(step["field"]), _fields(step.get("group_by"))
    items = [("\x00".join(str(row.get(f, "")) for f in group_by), "\n".join(str(row.get(f, "")) for f in fields))
             for row in rows]
    # MinHash is CPU work (~1 ms a row): in a thread, so the event loop keeps other leaves' requests
    # flowing meanwhile (the interpreter switches threads every few ms). Same order, same verdicts.
    flags = await asyncio.to_thread(_duplicates, items, float(step.get("threshold", 0.7)),
                                    int(step.get("num_perm", 128)), int(step.get("shingle", 5)))
    ctx.drop("duplicate", sum(flags))
    return [row for row, dup in zip(rows, flags, strict=True) if not dup]
