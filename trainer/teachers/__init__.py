"""Teacher LLMs for synthetic data generation, behind one small async interface.

``make_teacher(spec)`` picks the backend from a spec string (or a list of endpoints), so configs and CLIs
carry only that:

- ``http://host:port/v1`` or ``https://...`` (optionally ``#model``): OpenAI-compatible server; a *list* of
  such URLs (never a string split on spaces: a folder's path may hold one): one teacher over replicas of one
  model (:mod:`.pool`);
- ``vllm:PATH``: vLLM in this process (GPU; ``labrador-lab[gpu]``);
- an existing model directory (or ``transformers:PATH``): local transformers (``labrador-lab[train]``);
- ``embedded``: SmolLM2-135M-Instruct from the package registry, pulled once (local transformers);
- ``replay:FILE``: answers from a recording (tests and demos; no model).

Projects configure the teacher in ``[teacher]`` (:mod:`trainer.teachers.config`), whose ``build_teacher`` is the
one place that calls this.

Backend modules are imported lazily so that, e.g., the HTTP teacher never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .backends import EMBEDDED, HTTP, REPLAY, VLLM, backend_of, embedded_folder, folder_of
from .base import Request, Teacher, TeacherError

__all__ = ["Request", "Teacher", "TeacherError", "make_teacher"]

SPEC_FORMS = (
    "'http(s)://HOST[:PORT][/v1][#MODEL]' (OpenAI-compatible server), "
    "'vllm:PATH' (vLLM in process), an existing model directory / 'transformers:PATH', 'embedded' "
    "(SmolLM2-135M-Instruct from the package registry; see `labrador models list`), or 'replay:FILE' (a recording)"
)


def make_teacher(spec: str | Sequence[str], **options: Any) -> Teacher:
    """Build the teacher named by ``spec`` (a list of several endpoints: one pooled teacher); ``options`` go to
    the backend's constructor."""
    if not isinstance(spec, str):  # several endpoints of one model (settings.join_endpoints)
        urls = [str(u).strip() for u in spec]
        if len(urls) > 1:
            from .pool import PooledTeacher

            return PooledTeacher(urls, **options)
        spec = urls[0] if urls else ""
    spec = spec.strip()
    backend = backend_of(spec)
    if backend is HTTP:
        from .openai_http import OpenAIHTTPTeacher

        return OpenAIHTTPTeacher(spec, **options)
    if backend is REPLAY:
        from .replay import ReplayTeacher

        file = Path(REPLAY.strip(spec)).expanduser()
        if not file.is_file():
            raise ValueError(f"replay teacher: recording {file} does not exist")
        return ReplayTeacher.from_file(file, **options)
    if backend is VLLM:
        from .vllm_inprocess import VLLMTeacher

        return VLLMTeacher(VLLM.strip(spec), **options)
    if backend is EMBEDDED:  # a model from the package registry, pulled once
        spec = embedded_folder(spec)
    path = folder_of(spec)
    if spec and path is not None and path.is_dir():
        from .local_transformers import TransformersTeacher

        return TransformersTeacher(path, **options)
    raise ValueError(f"unrecognised teacher spec {spec!r}: expected {SPEC_FORMS}")
