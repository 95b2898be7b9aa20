"""The judge: one structured verdict per answer (``answer_judge``, a prompt file a taxonomy may override),
each answer judged alone so the order of two answers cannot sway it. A verdict that fails (the teacher erred,
or the reply still fails its schema after the retries) is an error, counted, never a score."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from labrador.trainer.sdg.prompting import Prompt, build_request, defang, load_prompt
from labrador.trainer.teachers.base import Teacher, TeacherError, complete_checked

from .questions import Question

PROMPT = "answer_judge"


@dataclass(frozen=True)
class Judgement:
    score: int | None  # 1..10; None: the judge failed (see ``error``)
    explanation: str = ""
    error: str = ""


def judge_prompt(override_dir: Path | None = None) -> Prompt:
    return load_prompt(PROMPT, override_dir)


def _seed(q: Question, answer: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{q.leaf}\0{q.prompt}\0{answer}".encode()).digest()[:7], "big")


async def judge(teacher: Teacher, prompt: Prompt, questions: Sequence[Question], answers: Sequence[str], *,
                retries: int = 2, tick: Callable[[], None] | None = None) -> list[Judgement]:
    """One judgement per (question, answer), in order."""
    async def one(q: Question, answer: str) -> Judgement:
        try:
            variables = {"question": defang(q.prompt), "reference": defang(q.reference), "answer": defang(answer)}
            request = build_request(prompt, variables, seed=_seed(q, answer), n=1)
            texts, _ = await complete_checked(teacher, request, retries)
        except (TeacherError, ValueError) as exc:  # ValueError: a template that does not render (an override)
            return Judgement(None, error=f"{type(exc).__name__}: {exc}"[:300])
        finally:
            if tick is not None:
                tick()
        text = texts[0] if texts else ""
        score, explanation = prompt.verdict(text)
        if score is None:
            return Judgement(None, error=f"unparseable verdict: {text[:120]!r}")
        return Judgement(int(score), explanation=explanation)

    return list(await asyncio.gather(*(one(q, a) for q, a in zip(questions, answers, strict=True))))

