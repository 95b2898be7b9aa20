"""Repeated seeds teach the teacher nothing new and skew generation toward one example."""

from collections.abc import Iterator
from typing import Any

from ..findings import Finding

ID = "duplicate-seed"
SEVERITY = "error"
DESCRIPTION = ("a repeated seed (ignoring case and spacing): a whole seed example equal to an earlier one, a "
               "question asked twice in one context's Q&A, or a skill's question (with its context) asked twice")
CONTEXT_ID = "repeated-context"
CHECKS = (
    (ID, SEVERITY, DESCRIPTION),
    (CONTEXT_ID, "warning", "a knowledge context used by two seed examples (the same question asked of different "
     "passages is fine and common)"),
)


def _norm(text: Any) -> str:
    return " ".join(str(text).split()).casefold()


_HINT = "Remove the copy or write a different example."


def _repeats(items: list[tuple[str, tuple]], what: str, marks: dict, check: str = ID,
             severity: str = SEVERITY, hint: str = _HINT) -> Iterator[Finding]:
    seen: dict[str, tuple] = {}
    for key, path in items:
        if not key:
            continue
        if key in seen:
            first = seen[key]
            line, col = marks.get(path, (0, 0))
            yield Finding(check, severity, f"{what} repeats the one at line {marks.get(first, (0, 0))[0]}",
                          line, col, hint=hint)
        else:
            seen[key] = path


def check(data: dict, marks: dict, branch: str) -> Iterator[Finding]:
    seeds = data.get("seed_examples")
    if not isinstance(seeds, list):
        return
    seeds = [(i, s) for i, s in enumerate(seeds) if isinstance(s, dict)]
    if branch == "knowledge":
        whole = [(_seed_key(s), ("seed_examples", i)) for i, s in seeds]
        copies = list(_repeats(whole, "seed example", marks))
        yield from copies
        copied = {(f.line, f.column) for f in copies}
        contexts = [(_norm(s.get("context", "")), ("seed_examples", i, "context")) for i, s in seeds
                    if marks.get(("seed_examples", i), (0, 0)) not in copied]
        yield from _repeats(contexts, "context", marks, CONTEXT_ID, "warning",
                            "Fine if the seeds ask different things of it; otherwise use another passage of the "
                            "document.")
        for i, s in seeds:
            qas = s.get("questions_and_answers")
            if isinstance(qas, list) and marks.get(("seed_examples", i), (0, 0)) not in copied:
                yield from _repeats([(_norm(qa.get("question", "")), ("seed_examples", i, "questions_and_answers",
                                                                         j, "question"))
                                     for j, qa in enumerate(qas) if isinstance(qa, dict)],
                                    "question (in the same context)", marks)
        return
    yield from _repeats(
        [(_skill_key(s), ("seed_examples", i, "question")) for i, s in seeds],
        "seed question", marks)


def _seed_key(seed: dict) -> str:
    """A whole knowledge seed, normalised: its context and every question and answer."""
    qas = seed.get("questions_and_answers")
    pairs = [(_norm(qa.get("question", "")), _norm(qa.get("answer", ""))) for qa in qas if isinstance(qa, dict)] \
        if isinstance(qas, list) else []
    return _norm(seed.get("context", "")) + "\0" + repr(pairs)


def _skill_key(seed: dict) -> str:
    """Context plus question; a seed without a question is the schema's to report, not a repeat."""
    question = _norm(seed.get("question", ""))
    return _norm(seed.get("context", "")) + "\0" + question if question else ""
