"""Tonight's judged evaluation: the candidate against the model it started from, on the changed leaves'
seed questions plus a fixed sample of earlier leaves (forgetting that the loss does not show), judged by the
night's teacher. The result is the contract object of ``labrador evaluate``, plus one row per question."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from labrador.validators.atomic import atomic_write_jsonl
from labrador.validators.tree import repo_root

from .context import Night
from .data import NightError


def earlier_sample(leaves: list[str], changed: set[str], count: int, seed: int) -> list[str]:
    """A fixed sample of the unchanged leaves: the same ones every night for a seed (ranked by a hash of the
    seed and the leaf), so night-to-night scores compare."""
    rest = [leaf for leaf in leaves if leaf not in changed]
    return sorted(rest, key=lambda leaf: hashlib.sha256(f"{seed}:{leaf}".encode()).hexdigest())[:count]


def night_questions(night: Night, leaves: list[str], what: str) -> list[Any]:
    """The seed questions of ``leaves`` (``[evaluate] questions_per_leaf`` of each)."""
    from ..evaluation.questions import EvaluationError, leaf_questions

    try:
        return [q for qs in leaf_questions(night.taxonomy, leaves, night.checker,
                                           night.evaluate.questions_per_leaf).values() for q in qs]
    except EvaluationError as exc:
        raise NightError(f"{what}: {exc}") from None


def night_judge(night: Night) -> Any:
    """The night's teacher as the judge."""
    from ..teachers.config import build_teacher

    try:
        return build_teacher(night.teacher)
    except (ValueError, ImportError) as exc:
        raise NightError(f"judge {night.teacher.label!r}: {exc}") from None


def judge_overrides(night: Night) -> Path | None:
    """The taxonomy's prompt override folder (its ``answer_judge.yaml``), when it has one."""
    prompts = repo_root(night.taxonomy) / "sdg" / "prompts"
    return prompts if prompts.is_dir() else None


def changed_leaves(record: dict[str, Any]) -> list[str]:
    """Tonight's regenerated leaves that still exist."""
    return [leaf for leaf in record["leaves_regenerated"] if leaf in record["leaf_hashes"]]


def branch_eval(night: Night, record: dict[str, Any], run_dir: Path, start: str,
                parent: dict[str, Any] | None) -> dict[str, Any]:
    from ..evaluation.questions import EvaluationError
    from ..evaluation.run import evaluate_branch

    s = night.settings
    current = sorted(record["leaf_hashes"])
    changed = changed_leaves(record)
    earlier = earlier_sample(current, set(changed), s.eval_earlier_leaves, s.seed) if parent else []
    questions = night_questions(night, [*changed, *earlier], "judged evaluation")
    if not questions:
        return {"result": None, "changed": changed, "earlier": earlier}
    judge = night_judge(night)
    night.say(f"judging {len(questions)} seed question(s) of {len(changed)} changed and {len(earlier)} earlier "
              f"leaf(s) with {judge.name}")
    seen = set((parent or {}).get("leaf_hashes") or {})  # the first night's parent is the base: saw nothing
    try:
        result, details = evaluate_branch(record["model"], start, judge, questions, night.evaluate, seen=seen,
                                          prompts=judge_overrides(night))
    except EvaluationError as exc:
        raise NightError(f"judged evaluation: {exc}") from None
    atomic_write_jsonl(run_dir / "branch_eval.jsonl", details)
    return {"result": result, "changed": changed, "earlier": earlier}
