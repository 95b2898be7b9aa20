"""Safe Markdown building blocks, shared by ``labrador check`` previews and the PR bot. Pure, stdlib only.

Every string from outside (contributors, the teacher) is hostile and goes through one of three sinks:

- :func:`text` for inline Markdown (paragraphs, table cells): HTML entities for ``& < >``, a backslash
  before every Markdown special (``|`` included, so a table keeps its shape), ``@`` and ``#`` broken with
  a zero-width joiner (no mentions, team pings, cross-references or headings), newlines as ``<br>``;
- :func:`html` for raw HTML such as ``<summary>``, where backslashes would show literally: entities for
  every Markdown special and ``& < > " '``, ``@``/``#`` broken with a zero-width joiner, one line;
- :func:`code_block` for long text: a fence longer than any backtick run inside, so nothing can close it.

All three show control and bidi characters as ``\\uXXXX`` (no hidden or reordered text), clip to a limit,
and never emit ``<!--``, so nobody can forge the bot's hidden markers. Why here: ``trainer`` is where both
users may import from (``validators`` <- ``trainer`` <- ``bot``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ZWJ = "\u200d"
_MD_SPECIALS = frozenset("\\`*_{}[]()#+-.!|~>=\"'$:")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069\u200e\u200f]")
_LANG = re.compile(r"[A-Za-z0-9_+-]*")
_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$")
_HEX = re.compile(r"^[0-9a-f]{7,64}$")


def _clean(value: object, limit: int) -> str:
    """str; control and bidi characters shown as ``\\u`` escapes (no hidden or reordered text); clipped."""
    s = str(value).replace("\r\n", "\n")
    if len(s) > limit:
        s = s[:limit] + " …"
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", s)


def text(value: object, limit: int = 2_000, newline: str = "<br>") -> str:
    """Inline-safe text for paragraphs and table cells (one line unless ``newline`` says otherwise)."""
    out = []
    for ch in _clean(value, limit):
        if ch in "&<>":
            out.append(_ENTITIES[ch])
        elif ch == "\n":
            out.append(newline)
        elif ch in "@#":  # no mentions, team pings, issue references or headings
            out.append("\\" + ch + ZWJ)
        elif ch in _MD_SPECIALS:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def html(value: object, limit: int = 200) -> str:
    """Text for raw HTML such as ``<summary>``, where backslash escapes would show literally: entities."""
    out = []
    for ch in _clean(value, limit).replace("\n", " "):
        if ch in "@#":
            out.append(ch + ZWJ)
        elif ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch in _MD_SPECIALS:  # literal characters, never Markdown inside the HTML block
            out.append(f"&#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def code_block(value: object, limit: int = 4_000, lang: str = "") -> str:
    """A fenced block longer than any backtick run inside, so content cannot close it; ``<!--`` is broken up."""
    if not _LANG.fullmatch(lang):
        raise ValueError(f"not a code block language: {lang!r}")
    body = _clean(value, limit).replace("<!--", "<" + ZWJ + "!--")
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


def sha(value: str) -> str:
    """A commit id as inline code, or a placeholder if it is not hex (it came from outside)."""
    return f"`{value[:12]}`" if _HEX.match(value or "") else "(unknown commit)"


def user(login: str) -> str:
    """A mention for a well-formed login (we do mean to notify the requester), else escaped text."""
    return f"@{login}" if _LOGIN.match(login or "") else text(login, 60)


def table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """A GFM table; cells must already be safe (made with :func:`text`, which escapes ``|``)."""
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def details(summary: str, body: str) -> str:
    """A collapsed block; ``summary`` must be safe (:func:`html`). The blank lines let Markdown render inside."""
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def fit(blocks: list[str], budget: int, note: str = "{n} more not shown: the comment size limit was reached.") -> str:
    """Join whole blocks while they fit in ``budget``; say how many were left out (never cut a block)."""
    out, used = [], 0
    for i, block in enumerate(blocks):
        if used + len(block) + 2 > budget:
            out.append(f"_{note.format(n=len(blocks) - i)}_")
            break
        out.append(block)
        used += len(block) + 2
    return "\n\n".join(out)
