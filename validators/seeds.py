"""A leaf's seed examples, read one way for everyone: generation, evaluation, previews and the nightly job.

Why here: the checker owns the schema, so it is the one place that knows a knowledge seed (a context with
several question/answer pairs) from a skill seed (one question and answer, maybe grounded in a context).
Tolerant on purpose: a preview shows the seeds of a leaf the checker refused, so malformed items are
skipped rather than raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QA:
    question: str
    answer: str


@dataclass(frozen=True)
class SeedExample:
    """One item of ``seed_examples``: knowledge has a context and its pairs; a skill has one pair."""

    context: str
    pairs: tuple[QA, ...]


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def seed_examples(data: Any) -> list[SeedExample]:
    """The parsed leaf's seed examples, texts stripped; items that are not mappings are skipped."""
    out: list[SeedExample] = []
    items = data.get("seed_examples") if isinstance(data, Mapping) else None
    for seed in items if isinstance(items, list) else []:
        if not isinstance(seed, Mapping):
            continue
        raw = seed.get("questions_and_answers")
        pairs = raw if isinstance(raw, list) else [seed]
        out.append(SeedExample(_text(seed.get("context")), tuple(
            QA(_text(qa.get("question")), _text(qa.get("answer"))) for qa in pairs if isinstance(qa, Mapping))))
    return out


def leaf_kind(branch: str, data: Any) -> str:
    """``knowledge`` by branch; a skill is ``grounded`` when a seed carries a context, else ``freeform``."""
    if branch == "knowledge":
        return "knowledge"
    return "grounded" if any(s.context for s in seed_examples(data)) else "freeform"


def seed_conversations(data: Any) -> list[list[dict[str, str]]]:
    """Each seed pair as a chat (the context, if any, before the question): what the leaf means to teach."""
    return [[{"role": "user", "content": f"{s.context}\n\n{qa.question}".strip()},
             {"role": "assistant", "content": qa.answer}]
            for s in seed_examples(data) for qa in s.pairs]
