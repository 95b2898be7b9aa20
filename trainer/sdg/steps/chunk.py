"""``chunk``: documents into ~``chunk_tokens``-token chunks, crossed with the incoming (seed) rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..chunking import chunk_markdown, decode_document
from . import Row, derive, register

if TYPE_CHECKING:
    from ..engine import Context


@register("chunk", optional=("chunk_tokens",))
async def run(step: dict[str, Any], rows: list[Row], ctx: Context) -> list[Row]:
    size = int(step.get("chunk_tokens", 500))
    chunks: list[tuple[str, str]] = []
    for path, data in sorted(ctx.documents):
        text = decode_document(path, data)
        if text is None:
            ctx.drop("unsupported_document")
            continue
        chunks.extend((path, c) for c in chunk_markdown(text, size, ctx.teacher.count_tokens))
    if not chunks:
        raise ValueError("the knowledge leaf has no document text to generate from")
    if ctx.limits.max_chunks is not None and len(chunks) > ctx.limits.max_chunks:
        ctx.drop("over_limit", len(chunks) - ctx.limits.max_chunks)
        chunks = chunks[: ctx.limits.max_chunks]
    return [derive(row, f"k{j}", chunk=text, document=path, chunk_index=j)
            for j, (path, text) in enumerate(chunks) for row in rows]
