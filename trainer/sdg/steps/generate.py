"""``generate``: one request per row; each completion is parsed into 0..k new rows (fan-out)."""

from __future__ import annotations

from typing import Any

from ..parsing import PARSERS
from .base import Context, Row, derive, register


@register("generate", required=("prompt",), optional=("parse", "into"))
async def run(step: dict[str, Any], rows: list[Row], ctx: Context) -> list[Row]:
    prompt = ctx.prompt(step["prompt"])
    parser = PARSERS[step.get("parse", "text")]
    multi = parser.multi or prompt.schema is not None  # a schema's reply is a list of items
    parse = prompt.items if prompt.schema is not None else parser.parse  # the schema is the format
    into = step.get("into", "text")
    rows = ctx.cap(rows)
    n = min(prompt.n, ctx.limits.n) if ctx.limits.n else prompt.n
    results = await ctx.ask([ctx.request(prompt, row, n=n) for row in rows])
    out: list[Row] = []
    for row, texts in zip(rows, results, strict=True):
        for c, text in enumerate(texts or ()):
            parsed = parse(text)
            for reason, count in sorted(parsed.errors.items()):
                ctx.drop(reason, count)
            for j, item in enumerate(parsed.items):
                suffix = f"{c}.{j}" if multi else ("" if len(texts or ()) == 1 else str(c))
                child = derive(row, suffix, **(item if isinstance(item, dict) else {into: item}))
                child["_meta"]["prompts"][prompt.name] = prompt.version
                out.append(child)
    if multi:
        ctx.stats.generated = len(out)  # the last fan-out step's output is the candidate count
    return out
