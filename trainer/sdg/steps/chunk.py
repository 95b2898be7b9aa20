"""``chunk``: documents into ~``chunk_tokens``-token chunks, crossed with the incoming (seed) rows.

A document without usable text (corrupt, encrypted or huge PDF; scanned PDF with no text layer)
is dropped with a counted reason and a note in the manifest's ``errors``; the leaf goes on with
its other documents and fails only when none is left.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..chunking import chunk_markdown, decode_document
from ..pdftext import PdfTextError, is_pdf
from .base import Context, Row, derive, register


@register("chunk", optional=("chunk_tokens",), bounds={"chunk_tokens": (int, 16, 100_000)})
async def run(step: dict[str, Any], rows: list[Row], ctx: Context) -> list[Row]:
    size = int(step.get("chunk_tokens", 500))
    chunks: list[tuple[str, str]] = []
    skipped: list[str] = []
    for path, data in sorted(ctx.documents):
        try:
            if is_pdf(path, data):  # CPU-bound: keep the event loop (other leaves) running
                text = await asyncio.to_thread(decode_document, path, data)
            else:
                text = decode_document(path, data)
        except PdfTextError as exc:
            ctx.drop(exc.reason)
            ctx.stats.note_error(f"{path}: {exc}")
            skipped.append(f"{path}: {exc}")
            continue
        chunks.extend((path, c) for c in chunk_markdown(text, size, ctx.teacher.count_tokens))
    if not chunks:
        why = f" ({'; '.join(skipped[:3])})" if skipped else ""
        raise ValueError(f"the knowledge leaf has no document text to generate from{why}")
    if ctx.limits.max_chunks is not None and len(chunks) > ctx.limits.max_chunks:
        ctx.drop("capped", len(chunks) - ctx.limits.max_chunks)
        chunks = chunks[: ctx.limits.max_chunks]
    return [derive(row, f"k{j}", chunk=text, document=path, chunk_index=j)
            for j, (path, text) in enumerate(chunks) for row in rows]
