"""Repeated seeds teach the teacher nothing new and skew generation toward one example."""

from collections.abc import Iterator
from typing import Any

from ..findings import Finding

ID = "duplicate-seed"
SEVERITY = "error"
DESCRIPTION = "a seed example, context or question that repeats an earlier one (ignoring case and spacing)"


def _norm(text: Any) -> str:
    return " ".join(str(text).split()).casefold()


def _repeats(items: list[tuple[str, tuple]], what: str, marks: dict) -> Iterator[Finding]:
    seen: dict[str, tuple] = {}
    for key, path in items:
        if not key:
            continue
        if key in seen:
            first = seen[key]
            line, col = marks.get(path, (0, 0))
            yield Finding(ID, SEVERITY, f"{what} repeats the one at line {marks.get(first, (0, 0))[0]}",
                          line, col, hint="Remove the copy or write a different example.")
        else:
            seen[key] = path


def check(data: dict, marks: dict, branch: str) -> Iterator[Finding]:
    seeds = data.get("seed_examples")
    if not isinstance(seeds, list):
        return
    seeds = [(i, s) for i, s in enumerate(seeds) if isinstance(s, dict)]
    if branch == "knowledge":
        yield from _repeats([(_norm(s.get("context", "")), ("seed_examples", i, "context")) for i, s in seeds],
                            "context", marks)
        questions = []
        for i, s in seeds:
            qas = s.get("questions_and_answers")
            if isinstance(qas, list):
                questions += [(_norm(qa.get("question", "")), ("seed_examples", i, "questions_and_answers", j,
                                                                "question"))
                              for j, qa in enumerate(qas) if isinstance(qa, dict)]
        yield from _repeats(questions, "question", marks)
        return
    yield from _repeats(
        [(_skill_key(s), ("seed_examples", i, "question")) for i, s in seeds],
        "seed question", marks)


def _skill_key(seed: dict) -> str:
    """Context plus question; a seed without a question is the schema's to report, not a repeat."""
    question = _norm(seed.get("question", ""))
    return _norm(seed.get("context", "")) + "\0" + question if question else ""
