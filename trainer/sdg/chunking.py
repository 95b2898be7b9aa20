"""Markdown-aware chunking of knowledge documents into pieces of about ``size`` teacher tokens.

Headings start sections, so a chunk does not end with the next section's title; small sections
are merged up to the budget; a section over budget is split by ``semchunk`` (paragraphs, then
lines, sentences, words), counting tokens with the teacher's own tokenizer as LAB prescribes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import semchunk

from .pdftext import is_pdf, pdf_to_markdown

_HEADING = re.compile(r"^ {0,3}#{1,6}(?:\s|$)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FRONT_MATTER = re.compile(r"\A---\n.*?\n(?:---|\.\.\.)\n", re.DOTALL)


def sections(text: str) -> list[str]:
    """Split at ATX headings (``#`` ... ``######``) that are not inside fenced code blocks."""
    text = _FRONT_MATTER.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    out: list[list[str]] = [[]]
    fence = ""
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if m:
            mark = m.group(1)
            if not fence:
                fence = mark
            elif mark[0] == fence[0] and len(mark) >= len(fence):
                fence = ""
        elif not fence and _HEADING.match(line) and any(s.strip() for s in out[-1]):
            out.append([])
        out[-1].append(line)
    return [s for s in ("\n".join(lines).strip() for lines in out) if s]


def chunk_markdown(text: str, size: int, count: Callable[[str], int]) -> list[str]:
    """Chunks of at most ``size`` tokens (by ``count``), in document order, none empty."""
    if size < 1:
        raise ValueError("chunk size must be >= 1 token")
    pieces: list[str] = []
    for section in sections(text):
        if count(section) <= size:
            pieces.append(section)
            continue
        heading, body = "", section
        if _HEADING.match(section):  # keep the heading with the start of its text, not alone
            heading, _, body = section.partition("\n")
        budget = max(1, size - count(heading)) if heading else size
        parts = [p.strip() for p in semchunk.chunk(body, budget, count) if p.strip()]
        if heading:
            parts = [heading + "\n" + parts[0], *parts[1:]] if parts else [heading]
        pieces.extend(parts)
    merged: list[str] = []
    for piece in pieces:
        if merged and count(candidate := merged[-1] + "\n\n" + piece) <= size:
            merged[-1] = candidate
        else:
            merged.append(piece)
    return merged


def decode_document(path: str, data: bytes) -> str:
    """Text of a Markdown/plain or PDF document (PDF: ``## Page N`` sections, see :mod:`.pdftext`).

    Raises :class:`~.pdftext.PdfTextError` (with the drop reason to count) for a PDF without usable text.
    """
    if is_pdf(path, data):
        return pdf_to_markdown(data)  # pypdf is imported only here, on first use
    return data.decode("utf-8", errors="replace").lstrip("\ufeff")
