"""Text of a PDF document as Markdown-ish text, one ``## Page N`` section per page, with bounds.

Uses ``pypdf`` (pure Python, no dependencies), imported lazily so the rest of the generator works
without it. Input is untrusted: encrypted, corrupt, truncated or huge files raise
:class:`PdfTextError` with a drop reason and a message, never anything else. Scanned PDFs (images,
no text layer) raise it too: OCR is not done.

Bounds: at most ``max_pages`` pages and ``max_chars`` characters of text, checked as text is
produced, and a wall-clock ``max_seconds`` checked between text operations and pages (pypdf's own
limits bound stream decompression). A file over a bound is dropped, not cut short, so a leaf never
trains on a silently truncated document.
"""

from __future__ import annotations

import io
import re
import time

MAX_PAGES = 500
MAX_CHARS = 2_000_000
MAX_SECONDS = 60.0
VERSION = "1"  # bump when the text this module produces for the same bytes changes

UNREADABLE = "unreadable_document"
NO_TEXT = "no_text_document"
UNSUPPORTED = "unsupported_document"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MARKUP_LINE = re.compile(r"^( {0,3})(#{1,6}(?:\s|$)|`{3,}|~{3,})", re.MULTILINE)
_BLANKS = re.compile(r"\n{3,}")


class PdfTextError(Exception):
    """The PDF gives no usable text; ``reason`` is the drop reason to count."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _Over(Exception):
    """Raised from inside pypdf's text visitor to stop at a bound."""


def is_pdf(path: str, data: bytes) -> bool:
    return path.lower().endswith(".pdf") or data[:1024].lstrip().startswith(b"%PDF")


def extractor_id() -> str:
    """Identifies the text this module produces (enters the leaf key of leaves with PDFs)."""
    try:
        import pypdf
    except ImportError:
        return f"pdftext-{VERSION}+none"
    return f"pdftext-{VERSION}+pypdf-{pypdf.__version__}"


def _clean(text: str) -> str:
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _MARKUP_LINE.sub(lambda m: m.group(1) + "\\" + m.group(2), text)  # only our headings split
    return _BLANKS.sub("\n\n", "\n".join(line.rstrip() for line in text.split("\n"))).strip()


def pdf_to_markdown(data: bytes, *, max_pages: int | None = None, max_chars: int | None = None,
                    max_seconds: float | None = None) -> str:
    """``## Page N`` + that page's text for each page with text, in page order.

    Bounds default to the module's ``MAX_PAGES``, ``MAX_CHARS`` and ``MAX_SECONDS``.

    Raises :class:`PdfTextError` (``unreadable_document``, ``no_text_document`` or, without pypdf,
    ``unsupported_document``) and nothing else for any input bytes.
    """
    try:
        from pypdf import PdfReader
    except ImportError:
        raise PdfTextError(UNSUPPORTED, "PDF support needs pypdf: pip install 'labrador-lab[sdg]'") from None
    max_pages = MAX_PAGES if max_pages is None else max_pages
    max_chars = MAX_CHARS if max_chars is None else max_chars
    max_seconds = MAX_SECONDS if max_seconds is None else max_seconds
    deadline = time.monotonic() + max_seconds
    produced = 0

    def visit(text: str, *_args: object) -> None:
        nonlocal produced
        produced += len(text)
        if produced > max_chars:
            raise _Over(f"more than {max_chars:,} characters of text")
        if time.monotonic() > deadline:
            raise _Over(f"text extraction took more than {max_seconds:g} s")

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")  # owner-password-only PDFs open with the empty user password
            except Exception as exc:
                raise PdfTextError(UNREADABLE, f"encrypted PDF that cannot be opened ({exc})") from None
            if not ok:
                raise PdfTextError(UNREADABLE, "encrypted PDF (needs a password); publish it unencrypted")
        pages = len(reader.pages)
        if pages > max_pages:
            raise PdfTextError(UNREADABLE, f"PDF has {pages:,} pages, more than the {max_pages:,} allowed")
        out: list[str] = []
        for number, page in enumerate(reader.pages, start=1):
            if time.monotonic() > deadline:
                raise _Over(f"text extraction took more than {max_seconds:g} s")
            text = _clean(page.extract_text(visitor_text=visit) or "")
            if text:
                out.append(f"## Page {number}\n\n{text}")
                produced = max(produced, sum(map(len, out)))
                if produced > max_chars:
                    raise _Over(f"more than {max_chars:,} characters of text")
    except PdfTextError:
        raise
    except _Over as exc:
        raise PdfTextError(UNREADABLE, f"PDF too large: {exc}") from None
    except Exception as exc:  # pypdf raises many types for hostile input (and RecursionError, MemoryError)
        raise PdfTextError(UNREADABLE, f"corrupt or unreadable PDF ({type(exc).__name__}: {exc})"[:300]) from None
    if not out:
        raise PdfTextError(NO_TEXT, f"no extractable text in {pages:,} page(s): scanned images? OCR is not done;"
                                    " add a text layer or convert the document to Markdown")
    return "\n\n".join(out) + "\n"
