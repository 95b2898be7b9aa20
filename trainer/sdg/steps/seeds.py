"""``seeds``: one row per seed example of the leaf (LAB uses only the leaf's own seeds)."""

from __future__ import annotations

from typing import Any

from .base import Context, Row, register


@register("seeds")
async def run(step: dict[str, Any], rows: list[Row], ctx: Context) -> list[Row]:
    out = [{"seed": dict(s), "seed_index": i, "_id": f"s{i}", "_meta": {"prompts": {}, "scores": {}}}
           for i, s in enumerate(ctx.leaf.seeds)]
    return ctx.cap(out, ctx.limits.max_seeds)
