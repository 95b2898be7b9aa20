"""The one entry point: answer with both models, judge every answer, give the per-leaf verdicts. Used by
``labrador evaluate`` and by the nightly job's gate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from labrador.trainer.teachers.base import Teacher

from .answering import answer, open_model
from .judging import judge, judge_prompt
from .questions import Question
from .settings import EvaluateSettings
from .verdicts import branch_eval, model_score

# (stage, done, total): stage is "model", "baseline" (answers) or "judge"
Progress = Callable[[str, int, int], None]


async def _answers(spec: str, questions: Sequence[Question], s: EvaluateSettings, stage: str,
                   progress: Progress | None) -> list[str]:
    model = open_model(spec, s.batch_size)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(stage, done, len(questions))

    try:
        return await answer(model, questions, s.max_new_tokens, tick)
    finally:
        await model.aclose()


async def _evaluate(model: str, baseline: str, judge_teacher: Teacher, questions: Sequence[Question],
                    s: EvaluateSettings, seen: Collection[str] | None, prompts: Path | None,
                    progress: Progress | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    prompt = judge_prompt(prompts)  # a broken override fails before any model loads
    ours = await _answers(model, questions, s, "model", progress)  # one model in memory at a time
    theirs = await _answers(baseline, questions, s, "baseline", progress)
    done, total = 0, 2 * len(questions)

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress("judge", done, total)

    judged = await judge(judge_teacher, prompt, [*questions, *questions], [*ours, *theirs],
                         retries=s.judge_retries, tick=tick)
    mine, base = judged[: len(questions)], judged[len(questions):]
    result = branch_eval(judge=judge_teacher.name, model=model, baseline=baseline, questions=questions,
                         model_judgements=mine, baseline_judgements=base, seen=seen, min_delta=s.min_delta)
    details = [{"leaf": q.leaf, "question": q.prompt, "reference": q.reference,
                "model": {"answer": a, "score": m.score, "explanation": m.explanation, "error": m.error},
                "baseline": {"answer": b, "score": n.score, "explanation": n.explanation, "error": n.error}}
               for q, a, b, m, n in zip(questions, ours, theirs, mine, base, strict=True)]
    return result, details


def evaluate_branch(model: str, baseline: str, judge_teacher: Teacher, questions: Sequence[Question],
                    settings: EvaluateSettings | None = None, *, seen: Collection[str] | None = None,
                    prompts: Path | None = None, progress: Progress | None = None,
                    close_judge: bool = True) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(result, details)``: the evaluation object (see ``verdicts.branch_eval``) and one row per question
    with both answers, scores and the judge's explanations. ``prompts``: a taxonomy's prompt override folder
    (``answer_judge.yaml``). The judge is closed at the end unless ``close_judge`` is false."""
    async def main() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        try:
            return await _evaluate(model, baseline, judge_teacher, questions, settings or EvaluateSettings(),
                                   seen, prompts, progress)
        finally:
            if close_judge:
                await judge_teacher.aclose()

    return asyncio.run(main())


def score_models(models: Sequence[str], judge_teacher: Teacher, questions: Sequence[Question],
                 settings: EvaluateSettings | None = None, *, prompts: Path | None = None,
                 progress: Progress | None = None, close_judge: bool = True) -> list[dict[str, Any]]:
    """Each model's judged score on ``questions`` (see ``verdicts.model_score``), in order: the models answer
    one after the other (one in memory at a time), then every answer is judged alone."""
    s = settings or EvaluateSettings()

    async def main() -> list[dict[str, Any]]:
        try:
            prompt = judge_prompt(prompts)
            answers = [await _answers(m, questions, s, f"model {i + 1}/{len(models)}", progress)
                       for i, m in enumerate(models)]
            judged = await judge(judge_teacher, prompt, [q for _ in models for q in questions],
                                 [a for ans in answers for a in ans], retries=s.judge_retries)
        finally:
            if close_judge:
                await judge_teacher.aclose()
        n = len(questions)
        return [{"model": m, **model_score(questions, judged[i * n:(i + 1) * n])} for i, m in enumerate(models)]

    return asyncio.run(main())
