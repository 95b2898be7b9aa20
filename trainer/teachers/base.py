"""The one interface every teacher backend implements, plus the request it answers.

SDG code only ever sees :class:`Teacher`; which backend (HTTP server, local transformers, in-process
vLLM) sits behind it is a deployment choice made by :func:`trainer.teachers.make_teacher`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

ROLES = ("system", "user", "assistant")


class TeacherError(Exception):
    """A request that failed for good (after retries). The message names the cause, never secrets."""


@dataclass(frozen=True)
class Request:
    """One chat completion request; immutable and hashable so it can key checkpoints and caches."""

    messages: tuple[tuple[str, str], ...]  # (role, content)
    n: int = 1
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Normalise lists to tuples and ints to floats so equal requests always have equal keys.
        msgs = tuple((str(role), str(content)) for role, content in self.messages)
        object.__setattr__(self, "messages", msgs)
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "temperature", float(self.temperature))
        object.__setattr__(self, "top_p", float(self.top_p))
        if not msgs:
            raise ValueError("Request needs at least one message")
        bad = sorted({role for role, _ in msgs} - set(ROLES))
        if bad:
            raise ValueError(f"unknown message role(s) {bad}; expected one of {ROLES}")
        if self.n < 1 or self.max_tokens < 1:
            raise ValueError("n and max_tokens must be >= 1")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be >= 0 and top_p in (0, 1]")
        if not all(isinstance(s, str) and s for s in self.stop):
            raise ValueError("stop strings must be non-empty strings")

    @classmethod
    def chat(cls, messages: Iterable[Mapping[str, str] | tuple[str, str]], **params: object) -> Request:
        """Build from OpenAI-style ``{"role", "content"}`` dicts or ``(role, content)`` pairs."""
        pairs = tuple((m["role"], m["content"]) if isinstance(m, Mapping) else tuple(m) for m in messages)
        return cls(messages=pairs, **params)  # type: ignore[arg-type]

    def as_openai_messages(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def key(self) -> str:
        """sha256 of a canonical JSON of all fields: stable across processes and Python versions."""
        blob = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def sample_seed(seed: int | None, index: int) -> int | None:
    """Seed for the ``index``-th of ``n`` samples: sample 0 keeps ``seed`` (so n=1 and the first of n
    agree), the others get a distinct, well-mixed 31-bit seed (fits every server's seed field)."""
    if seed is None or index == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def cut_at_stop(text: str, stop: Iterable[str]) -> str:
    """OpenAI semantics: the text ends before the first stop string, which is not included."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


@runtime_checkable
class Teacher(Protocol):
    """A teacher LLM: answers chat requests, counts tokens, and releases its resources."""

    name: str  # stable identity (backend + endpoint/path + model); goes into provenance and cache keys

    async def complete(self, request: Request) -> list[str]:
        """Exactly ``request.n`` completion texts, or :class:`TeacherError`."""
        ...

    def count_tokens(self, text: str) -> int:
        """Token count with the teacher's own tokenizer when one is available."""
        ...

    async def aclose(self) -> None: ...
