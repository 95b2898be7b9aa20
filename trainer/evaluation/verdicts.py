"""From judgements to per-leaf verdicts: pure functions of data (the contract of ``labrador evaluate``).

A leaf's scores are means over the questions where both models' answers were judged (paired, so a judge
error on one side cannot move the delta); with no baseline score at all, the model's mean over its own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from statistics import fmean
from typing import Any

from .judging import Judgement
from .questions import Question

VERDICTS = ("improved", "regressed", "unchanged", "new", "unjudged")


def leaf_scores(model: Sequence[Judgement], baseline: Sequence[Judgement]) -> tuple[float | None, float | None]:
    """(model, baseline) mean scores of one leaf's questions."""
    pairs = [(m.score, b.score) for m, b in zip(model, baseline, strict=True)
             if m.score is not None and b.score is not None]
    if pairs:
        return fmean(m for m, _ in pairs), fmean(b for _, b in pairs)
    own = [m.score for m in model if m.score is not None]
    base = [b.score for b in baseline if b.score is not None]
    return (fmean(own) if own else None), (fmean(base) if base else None)


def verdict(delta: float | None, *, new: bool, min_delta: float) -> str:
    """``new`` when the baseline never saw the leaf; ``unjudged`` when the judge gave no verdict on one side
    (nothing can be said: never "unchanged"); else by how far the mean moved (``min_delta`` or more)."""
    if new:
        return "new"
    if delta is None:
        return "unjudged"  # the error rate and the details say why
    if delta >= min_delta:
        return "improved"
    if delta <= -min_delta:
        return "regressed"
    return "unchanged"


def branch_eval(*, judge: str, model: str, baseline: str, questions: Sequence[Question],
                model_judgements: Sequence[Judgement], baseline_judgements: Sequence[Judgement],
                seen: Collection[str] | None, min_delta: float) -> dict[str, Any]:
    """The evaluation object. ``seen``: the leaves the baseline was trained on (``None``: not known, so no
    leaf is "new"). Leaves appear in the order of their first question."""
    by_leaf: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        by_leaf.setdefault(q.leaf, []).append(i)
    leaves: dict[str, dict[str, Any]] = {}
    for leaf, idx in by_leaf.items():
        m, b = leaf_scores([model_judgements[i] for i in idx], [baseline_judgements[i] for i in idx])
        delta = None if m is None or b is None else m - b
        leaves[leaf] = {"model": _round(m), "baseline": _round(b), "delta": _round(delta), "questions": len(idx),
                        "verdict": verdict(delta, new=seen is not None and leaf not in seen, min_delta=min_delta)}
    return {"judge": judge, "model": model, "baseline": baseline,
            "judge_error_rate": error_rate([*model_judgements, *baseline_judgements]), "leaves": leaves}


def error_rate(judgements: Sequence[Judgement]) -> float:
    """The share of verdicts the judge failed to give (0 when none was asked)."""
    return round(sum(1 for j in judgements if j.score is None) / len(judgements), 4) if judgements else 0.0


def model_score(questions: Sequence[Question], judgements: Sequence[Judgement]) -> dict[str, Any]:
    """One model's judged score alone (checkpoint choice compares candidates with each other, not with a
    baseline): ``score`` is the mean of its leaves' means (each leaf weighs the same), ``None`` when nothing
    was judged."""
    by_leaf: dict[str, list[int]] = {}
    for j, q in zip(judgements, questions, strict=True):
        if j.score is not None:
            by_leaf.setdefault(q.leaf, []).append(j.score)
    leaves = {leaf: round(fmean(v), 4) for leaf, v in by_leaf.items()}
    return {"score": _round(fmean(leaves.values())) if leaves else None, "leaves": leaves,
            "judge_error_rate": error_rate(judgements)}


def any_regressed(result: Mapping[str, Any]) -> bool:
    return any(v["verdict"] == "regressed" for v in result["leaves"].values())


def unjudged(result: Mapping[str, Any]) -> list[str]:
    """The leaves the judge gave no usable verdict for (an evaluation that cannot say anything about them)."""
    return [leaf for leaf, v in result["leaves"].items() if v["verdict"] == "unjudged"]


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)
