"""Pure parsers for teacher completions: text in, items plus counted failures out.

Teachers do not always follow formats (missing tags, truncated replies, "I think 2"). A parser
never guesses: what does not match the asked-for format is counted by reason and dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Item = str | dict[str, str]
_NUMBERING = re.compile(r"^\s*(?:\d{1,3}\s*[.):]|[-*•])(?:\s+|$)")


@dataclass
class Parsed:
    """What one completion yielded: zero or more items, and failures by reason."""

    items: list[Item] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Parser:
    """A named completion format. ``multi`` parsers fan one completion out into many candidates."""

    name: str
    parse: Callable[[str], Parsed]
    multi: bool


def parse_text(text: str) -> Parsed:
    """The whole completion is the item (answers)."""
    body = text.strip()
    return Parsed(items=[body]) if body else Parsed(errors=Counter(empty=1))


def _blocks(text: str, tag: str) -> tuple[list[str], Counter[str]]:
    """Bodies between ``[tag]`` and ``[End]``. Small teachers often forget ``[End]`` between two blocks: a
    block closed by the next ``[tag]`` instead is kept (counted as ``missing_end``); only the last block
    without ``[End]`` (a truncated reply) is dropped as a parse error."""
    errors: Counter[str] = Counter()
    parts = re.split(rf"\[\s*{tag}\s*\]", text, flags=re.IGNORECASE)
    if len(parts) == 1:
        return [], Counter(parse_error=1) if text.strip() else Counter(empty=1)
    bodies = []
    for i, part in enumerate(parts[1:], 1):
        m = re.search(r"\[\s*end\s*\]", part, flags=re.IGNORECASE)
        if m is not None:
            bodies.append(part[: m.start()])
        elif i < len(parts) - 1:
            errors["missing_end"] += 1
            bodies.append(part)
        else:
            errors["parse_error"] += 1
    return bodies, errors


def _untagged(text: str) -> list[str]:
    """Items of a reply with no tags at all: its numbered or bulleted lines, or else the whole (short,
    one-paragraph) reply as one item; a long or multi-paragraph reply yields nothing (counted as empty)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    listed = [ln for ln in lines if _NUMBERING.match(ln)]
    if len(listed) >= 2:
        return listed
    body = text.strip()
    return [body] if body and "\n\n" not in body and len(body) <= 600 else [""]


def tagged(tag: str) -> Callable[[str], Parsed]:
    """Parser for ``[Tag] ... [End]`` blocks; leading list numbering is removed."""

    def parse(text: str) -> Parsed:
        bodies, errors = _blocks(text, tag)
        if not bodies and errors.get("parse_error") and not re.search(rf"\[\s*{tag}\s*\]", text, re.IGNORECASE):
            bodies, errors = _untagged(text), Counter()  # a small teacher that ignored the format entirely
        out = Parsed(errors=errors)
        for body in bodies:
            item = _NUMBERING.sub("", body.strip(), count=1).strip()
            if item:
                out.items.append(item)
            else:
                out.errors["empty"] += 1
        return out

    return parse


def parse_qa(text: str) -> Parsed:
    """``[Question] q [Answer] a [End]`` blocks into ``{"question", "answer"}`` items."""
    bodies, errors = _blocks(text, "Question")
    out = Parsed(errors=errors)
    for body in bodies:
        halves = re.split(r"\[\s*answer\s*\]", body, flags=re.IGNORECASE)
        if len(halves) != 2:
            out.errors["parse_error"] += 1
            continue
        q = _NUMBERING.sub("", halves[0].strip(), count=1).strip()
        a = halves[1].strip()
        if q and a:
            out.items.append({"question": q, "answer": a})
        else:
            out.errors["empty"] += 1
    return out


PARSERS: dict[str, Parser] = {
    "text": Parser("text", parse_text, multi=False),
    "tagged_questions": Parser("tagged_questions", tagged("Question"), multi=True),
    "tagged_contexts": Parser("tagged_contexts", tagged("Context"), multi=True),
    "tagged_qa": Parser("tagged_qa", parse_qa, multi=True),
}

# --- judges -----------------------------------------------------------------------------------

_SCORE_TAG = re.compile(r"\[\s*score\s*\]\s*([^\[]*?)\s*\[\s*end\s*\]", re.IGNORECASE)
_VERDICT_TAG = re.compile(r"\[\s*verdict\s*\]\s*([^\[]*?)\s*\[\s*end\s*\]", re.IGNORECASE)
_INT = re.compile(r"[+-]?\d+")


def _last_tagged(pattern: re.Pattern[str], text: str) -> str:
    """The value of the last tag if there is one, else the whole reply (a bare ``2`` or ``YES``)."""
    found = pattern.findall(text)
    return (found[-1] if found else text).strip().rstrip(".").strip()


def parse_score(text: str, lo: int, hi: int) -> int | None:
    """An integer in ``[lo, hi]`` from ``[Score] n [End]`` or a bare ``n``; failing that (small teachers answer
    in prose), the only whole number in ``[lo, hi]`` the reply holds. Anything else is ``None``."""
    value = _last_tagged(_SCORE_TAG, text)
    if _INT.fullmatch(value):
        score = int(value)
        return score if lo <= score <= hi else None
    found = {int(n) for n in re.findall(r"(?<![\w.])\d+(?![\w.])", text) if lo <= int(n) <= hi}
    return found.pop() if len(found) == 1 else None


def parse_yes_no(text: str) -> int | None:
    """1 for YES, 0 for NO (tagged ``[Verdict] YES [End]`` or bare); failing that, a reply that says exactly
    one of the words yes / no. Anything else is ``None``."""
    value = _last_tagged(_VERDICT_TAG, text).upper()
    if value in ("YES", "NO"):
        return {"YES": 1, "NO": 0}[value]
    words = {w.upper() for w in re.findall(r"\b(yes|no)\b", text, flags=re.IGNORECASE)}
    return {"YES": 1, "NO": 0}[words.pop()] if len(words) == 1 else None


def judge_parser(spec: dict[str, Any]) -> Callable[[str], int | None]:
    """Build the score parser a judge prompt declares in its ``parse:`` mapping."""
    fmt = spec.get("format")
    if fmt == "score":
        lo, hi = spec.get("range", (0, 1))
        return lambda text: parse_score(text, int(lo), int(hi))
    if fmt == "yes_no":
        return parse_yes_no
    raise ValueError(f"unknown judge parse format {fmt!r}; expected 'score' or 'yes_no'")


def json_cut_short(text: str) -> bool:
    """Does ``text`` open more JSON than it closes (a reply that hit ``max_tokens`` mid-object)? A scan of
    brackets outside strings; with a grammar-constrained teacher this is the only way a reply can fail."""
    depth, in_string, escaped = 0, False, False
    for ch in text.strip():
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
    return text.strip().startswith(("{", "[")) and (in_string or depth > 0)
