"""Both models answer: greedily, through their own chat template, one request per question (a local model
batches them). A model is any teacher spec, so a served model (``http://…/v1``) can be evaluated too."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from labrador.trainer.teachers.backends import folder_of
from labrador.trainer.teachers.base import Request, Teacher, TeacherError

from .questions import EvaluationError, Question

Tick = Callable[[], None]


def check_model(spec: str, what: str = "model") -> None:
    """A folder ``spec`` is a loadable Hugging Face folder (config, model type, tokenizer, whole weights),
    checked without loading it; other specs are checked by their backend."""
    from labrador.trainer.train.config import TrainConfigError, check_model_folder

    folder = folder_of(str(spec))
    if folder is None:  # a server, a recording, the embedded model: its backend checks it
        return
    try:
        check_model_folder(folder, what)
    except TrainConfigError as exc:
        raise EvaluationError(str(exc)) from None


def open_model(spec: str, batch_size: int) -> Teacher:
    """The model to evaluate, as a teacher: a Hugging Face folder (the usual case) or any teacher spec,
    built by the one teacher builder."""
    from labrador.trainer.teachers.config import TeacherSettings, build_teacher

    check_model(spec)
    folder = folder_of(spec)
    if folder is not None:
        spec = str(folder.resolve())
    try:
        return build_teacher(TeacherSettings(spec=spec, max_concurrency=batch_size))
    except (ValueError, ImportError, OSError, RecursionError, TeacherError) as exc:
        raise EvaluationError(f"{spec}: cannot load the model: {exc}") from None


async def answer(model: Teacher, questions: Sequence[Question], max_new_tokens: int,
                 tick: Tick | None = None) -> list[str]:
    """One greedy answer per question, in order. A model that cannot answer stops the evaluation: a score
    of an answer never given would be a lie."""
    async def one(q: Question) -> str:
        request = Request.chat([{"role": "user", "content": q.prompt}], temperature=0.0, seed=0,
                               max_tokens=max_new_tokens)
        try:
            texts = await model.complete(request)
        except TeacherError as exc:
            raise EvaluationError(f"{model.name} failed to answer a question of {q.leaf}: {exc}") from None
        if tick is not None:
            tick()
        return (texts[0] if texts else "").strip()

    return list(await asyncio.gather(*(one(q) for q in questions)))
