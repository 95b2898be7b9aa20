"""Checkpoint choice (``[nightly] choose_checkpoint``): the last phase's kept checkpoints and its final model
are each judged on the changed leaves' seed questions, and the best becomes tonight's candidate. Training
longer is not always better on a small night; InstructLab picks its phase-2 checkpoint by MT-Bench the same
way. A tie goes to the later one (more of tonight's data seen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .branch import changed_leaves, judge_overrides, night_judge, night_questions
from .context import Night
from .data import NightError


def pick(candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """The best-scored candidate (a tie: the later one); with no score at all, the last (the final model)."""
    scored = [(c["score"], i) for i, c in enumerate(candidates) if c.get("score") is not None]
    return candidates[max(scored)[1]] if scored else candidates[-1]


def choose_checkpoint(night: Night, record: dict[str, Any], run_dir: Path, trained: dict[str, Any]) -> dict[str, Any]:
    """``{"chosen", "model", "candidates": [{name, step, model, score, leaves, judge_error_rate}], "reason"}``."""
    from ..evaluation.questions import EvaluationError
    from ..evaluation.run import score_models
    from ..train.checkpoint import checkpoints
    from ..train.export import ExportError, export_checkpoint

    final = Path(trained["model"])
    steps = (trained.get("summary") or {}).get("phases", {}).get(final.parent.name, {}).get("steps")
    candidates = []
    for _, step, folder in checkpoints(run_dir / "train" / "checkpoints"):  # a night trains one phase
        try:
            model = export_checkpoint(folder, final, run_dir / "candidates" / folder.name)
        except ExportError as exc:
            raise NightError(f"checkpoint choice: {exc}") from None
        candidates.append({"name": f"step {step}", "step": step, "model": str(model)})
    candidates.append({"name": "final", "step": steps, "model": str(final)})
    if len(candidates) == 1:
        return {"chosen": "final", "model": str(final), "candidates": candidates,
                "reason": "no checkpoint was kept (save_every_steps, keep_checkpoints): the final model"}
    changed = changed_leaves(record)
    questions = night_questions(night, changed, "checkpoint choice")
    if not questions:
        return {"chosen": "final", "model": str(final), "candidates": candidates,
                "reason": "no changed leaf has a seed question: the final model"}
    judge = night_judge(night)
    night.say(f"choosing among {len(candidates)} checkpoints on {len(questions)} seed question(s) of "
              f"{len(changed)} changed leaf(s)")
    try:
        scores = score_models([c["model"] for c in candidates], judge, questions, night.evaluate,
                              prompts=judge_overrides(night))
    except EvaluationError as exc:
        raise NightError(f"checkpoint choice: {exc}") from None
    for c, s in zip(candidates, scores, strict=True):
        c.update(score=s["score"], leaves=s["leaves"], judge_error_rate=s["judge_error_rate"])
    best = pick(candidates)
    listed = ", ".join(f"{c['name']} {'—' if c['score'] is None else format(c['score'], '.2f')}" for c in candidates)
    reason = (f"{best['name']} scored best on the changed leaves ({listed})" if best.get("score") is not None
              else f"the judge scored no candidate ({listed}): the final model")
    return {"chosen": best["name"], "model": best["model"], "candidates": candidates, "reason": reason}
