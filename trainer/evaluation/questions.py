"""The questions of an evaluation: each leaf's seed examples, as the training data shows them (a knowledge
leaf's context before its question), with the seed's answer as the reference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrador.validators import check_file
from labrador.validators.holdout import GENERATION_PAIRS, choose, heldout_pairs
from labrador.validators.seeds import seed_conversations


class EvaluationError(ValueError):
    """An evaluation that cannot run (a missing or invalid leaf, a model that does not load); says what to fix."""


@dataclass(frozen=True)
class Question:
    leaf: str  # the leaf folder, relative to the taxonomy
    prompt: str  # the user turn
    reference: str  # the seed's answer


def leaf_questions(taxonomy: Path, leaves: Sequence[str], config: Any = None,
                   per_leaf: int = 0, heldout: int = 0) -> dict[str, list[Question]]:
    """``{leaf: questions}`` in the order given; ``per_leaf`` > 0 keeps the first that many of each leaf
    (a fixed choice, so two nights ask the same ones). ``heldout`` > 0: only each leaf's held-out pairs
    (:mod:`labrador.validators.holdout`, that many per leaf). A leaf that does not pass the checker is refused, and so
    is one with too few pairs to hold ``heldout`` out."""
    out: dict[str, list[Question]] = {}
    for leaf in leaves:
        qna = taxonomy / leaf / "qna.yaml"
        if not qna.is_file():
            raise EvaluationError(f"{qna}: no such leaf (pass leaf folders or folders above them)")
        report = check_file(f"{leaf}/qna.yaml", qna.read_bytes(), config)
        if not report.ok or not isinstance(report.data, dict):
            first = report.errors[0] if report.errors else None
            where = f":{first.line}" if first is not None and first.line else ""
            why = first.message if first is not None else "not a leaf"
            raise EvaluationError(f"{qna}{where}: {why} (run `labrador validate {leaf}`)")
        if heldout > 0:
            ids = choose(leaf, report.data, heldout)
            if ids is None:
                raise EvaluationError(f"{qna}: too few seed pairs to hold {heldout} out (a leaf keeps at least "
                                      f"{GENERATION_PAIRS} for generation); lower [evaluate] holdout_seeds or leave "
                                      "out --heldout")
            out[leaf] = [Question(leaf, p.prompt, p.reference) for p in heldout_pairs(leaf, report.data, ids)]
            continue
        convs = seed_conversations(report.data)
        if per_leaf > 0:
            convs = convs[:per_leaf]
        out[leaf] = [Question(leaf, c[0]["content"], c[1]["content"]) for c in convs]
    return out
