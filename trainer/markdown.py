"""Safe Markdown building blocks, shared by ``labrador check`` previews and the PR bot. Pure, stdlib only.

Every string from outside (contributors, the teacher) is hostile and goes through one of three sinks:

- :func:`text` for inline Markdown (paragraphs, table cells): ``<`` as an entity (no HTML), ``&`` only where
  it would start an entity, a backslash only where Markdown would act (emphasis, code, links, ``|`` so a
  table keeps its shape, a list or quote marker at the start), ``@`` and ``#`` broken with a zero-width
  joiner (no mentions, team pings, cross-references or headings), newlines as ``<br>``. Plain punctuation
  (``' " - . : = > !``) stays as it is, so the text reads well both as plain text and on GitHub;
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
_MD_SPECIALS = frozenset("\\`*_{}[]()#+-.!|~>=\"'$:")  # every one, for raw HTML
_INLINE_SPECIALS = frozenset("\\`*[]|~$")  # what Markdown acts on anywhere in a line
_BLOCK_STARTS = frozenset("-+=>")  # a list, setext heading or quote when it opens a line
_ORDERED_MARKER = re.compile(r"(?<=\d)[.)]")  # "1." or "1)" opening a line is an ordered list
_ENTITY_START = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
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


def plain(value: object, limit: int = 2_000) -> str:
    """Text for a terminal or a log: no Markdown and no escaping, but control and bidi characters shown as
    ``\\uXXXX`` (no terminal escape sequences, no hidden or reordered text) and clipped."""
    return _clean(value, limit)


def text(value: object, limit: int = 2_000, newline: str = "<br>") -> str:
    """Inline-safe text for paragraphs and table cells (one line unless ``newline`` says otherwise)."""
    s = _clean(value, limit)
    out = []
    for i, ch in enumerate(s):
        if ch == "<":
            out.append("&lt;")
        elif ch == "&":
            out.append("&amp;" if _ENTITY_START.match(s, i) else ch)
        elif ch == "\n":
            out.append(newline)
        elif ch in "@#":  # no mentions, team pings, issue references or headings
            out.append(ch + ZWJ)
        elif _acts(s, i):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _acts(s: str, i: int) -> bool:
    """Whether Markdown would read ``s[i]`` as syntax rather than as the character itself."""
    ch = s[i]
    if ch in _INLINE_SPECIALS or (ch == "_" and not _intraword(s, i)) or (ch == "(" and i and s[i - 1] == "]"):
        return True
    at_line_start = i == 0 or s[i - 1] == "\n"
    return (at_line_start and ch in _BLOCK_STARTS) or bool(_ORDERED_MARKER.match(s, i) and _line_start(s, i))


def _intraword(s: str, i: int) -> bool:
    """GFM never reads an ``_`` between two letters or digits as emphasis (``over_limit`` stays as typed)."""
    return 0 < i < len(s) - 1 and s[i - 1].isalnum() and s[i + 1].isalnum()


def _line_start(s: str, i: int) -> bool:
    """Whether ``s[i]`` follows only digits since the start of its line (an ordered-list marker there)."""
    j = i
    while j > 0 and s[j - 1].isdigit():
        j -= 1
    return j < i and (j == 0 or s[j - 1] == "\n")


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
