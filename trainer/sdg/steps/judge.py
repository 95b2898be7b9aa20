"""``judge``: the teacher scores each row; unparseable or below-threshold rows are dropped (unless judges are off)."""

from __future__ import annotations

from typing import Any

from ..parsing import json_cut_short
from .base import Context, Row, derive, register


@register("judge", required=("prompt",), optional=("into",))
async def run(step: dict[str, Any], rows: list[Row], ctx: Context) -> list[Row]:
    prompt = ctx.prompt(step["prompt"])
    if not prompt.is_judge or prompt.threshold is None:
        raise ValueError(f"prompt {prompt.name!r} is not a judge: it needs parse: and threshold:")
    name = step.get("into", prompt.name)
    if not ctx.limits.judges:  # judges off (the quick profile): every row passes, and the step says so
        ctx.step.skipped = True
        return rows
    rows = ctx.cap(rows)
    results = await ctx.ask([ctx.request(prompt, row, n=1) for row in rows])
    out: list[Row] = []
    for row, texts in zip(rows, results, strict=True):
        if texts is None:
            continue
        score = prompt.score(texts[0])
        if score is None:  # a verdict cut off mid-JSON (max_tokens) is told apart from one that makes no sense
            ctx.drop("truncated" if prompt.schema is not None and json_cut_short(texts[0]) else "judge_unparseable")
            continue
        if score < prompt.threshold:
            ctx.drop("judge_rejected")
            continue
        child = derive(row)
        child["_meta"]["prompts"][prompt.name] = prompt.version
        child["_meta"]["scores"][name] = score
        out.append(child)
    return out
