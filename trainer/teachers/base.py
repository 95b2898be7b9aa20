"""The one interface every teacher backend implements, plus the request it answers.

SDG code only ever sees :class:`Teacher`; which backend (HTTP server, local transformers, in-process
vLLM) sits behind it is a deployment choice made by :func:`labrador.trainer.teachers.make_teacher`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

ROLES = ("system", "user", "assistant")


class TeacherError(Exception):
    """A request that failed for good (after retries). The message names the cause, never secrets."""


class TeacherUnavailable(TeacherError):
    """The teacher could not be reached or kept failing (refused connections, timeouts, 5xx) after its
    retries: another replica of the same model may still answer (:mod:`labrador.trainer.teachers.pool`)."""


class EndpointFailed(TeacherUnavailable):
    """The endpoint itself misbehaved, whatever was asked (refused the key, answered non-JSON, JSON nested
    too deep, or as another model): another replica should be asked. ``for_run``: it will not mend during
    this run (a refused key, a switched model), so a pool leaves it out until the end."""

    def __init__(self, message: str, *, for_run: bool = False) -> None:
        super().__init__(message)
        self.for_run = for_run


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
    # the reply's JSON schema, as canonical JSON of {"name": ..., "schema": {...}}; "" = free text
    schema: str = ""

    def __post_init__(self) -> None:
        # Normalise lists to tuples and ints to floats so equal requests always have equal keys.
        msgs = tuple((str(role), str(content)) for role, content in self.messages)
        object.__setattr__(self, "messages", msgs)
        object.__setattr__(self, "schema", canonical_schema(self.schema))
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

    @property
    def response_format(self) -> dict[str, Any] | None:
        """OpenAI's ``response_format`` for the schema (strict), or ``None`` for free text."""
        if not self.schema:
            return None
        named = json.loads(self.schema)
        return {"type": "json_schema", "json_schema": {"name": named["name"], "schema": named["schema"],
                                                       "strict": True}}

    def key(self) -> str:
        """sha256 of a canonical JSON of all fields: stable across processes and Python versions. A request
        without a schema keys as it did before schemas existed, so earlier caches stay valid; one with a schema
        never shares a key with the same request unconstrained."""
        fields = asdict(self)
        if not self.schema:
            del fields["schema"]
        blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for json_schema.name


def canonical_schema(schema: str | Mapping[str, Any]) -> str:
    """``{"name": NAME, "schema": {...}}`` (a mapping or its JSON) as canonical JSON; ``""`` stays ``""``.
    Raises ``ValueError`` for anything else, before a request is ever sent."""
    if not schema:
        return ""
    try:
        named = json.loads(schema) if isinstance(schema, str) else dict(schema)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"schema is not JSON: {exc}") from None
    if not isinstance(named, dict) or set(named) != {"name", "schema"} or not isinstance(named["schema"], dict):
        raise ValueError('a request schema is {"name": NAME, "schema": {...}} (a JSON schema object)')
    if not isinstance(named["name"], str) or not _SCHEMA_NAME.fullmatch(named["name"]):
        raise ValueError("a schema name is 1-64 letters, digits, '_' or '-'")
    return json.dumps(named, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def schema_problem(schema: str, text: str, *, max_chars: int = 200_000) -> str | None:
    """Why ``text`` is not a reply matching ``schema`` (canonical JSON from :func:`canonical_schema`), or
    ``None``. Hostile replies (huge, nested past the parser's limit, wrong types) are a reason, never a crash."""
    return parse_reply(schema, text, max_chars=max_chars)[1]


def parse_reply(schema: str, text: str, *, max_chars: int = 200_000) -> tuple[Any, str | None]:
    """``(value, None)`` for a reply that is JSON matching ``schema``, else ``(None, why)``: the reply is
    parsed once, for both the check and its use."""
    if len(text) > max_chars:
        return None, f"reply of {len(text):,} characters is over {max_chars:,}"
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return None, f"not JSON: {type(exc).__name__}"
    try:
        error = next(_validator(schema).iter_errors(value), None)
    except RecursionError:
        return None, "nested too deeply"
    return (value, None) if error is None else (None, f"does not match the schema: {error.message[:200]}")


@lru_cache(maxsize=64)
def _validator(schema: str) -> Any:
    """One compiled validator per schema: every reply of a run is checked against a few schemas, and
    ``jsonschema.validate`` would check the schema itself again for each reply."""
    import jsonschema

    body = json.loads(schema)["schema"]
    return jsonschema.validators.validator_for(body)(body)


def sample_seed(seed: int | None, index: int) -> int | None:
    """Seed for the ``index``-th of ``n`` samples: sample 0 keeps ``seed`` (so n=1 and the first of n
    agree), the others get a distinct, well-mixed 31-bit seed (fits every server's seed field)."""
    if seed is None or index == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


RETRY_TEMPERATURE = 0.7  # a greedy request asked again greedily gets the same failing reply back


def retry_request(request: Request, index: int, attempt: int) -> Request:
    """The request that asks sample ``index`` again: one reply, a new seed, and sampled even when the original
    was greedy (the same prompt decoded greedily again would fail the same way; measured on the embedded judge:
    2 greedy retries of 10 failed verdicts cost 40 s and fixed none)."""
    return replace(request, n=1, seed=retry_seed(request.seed, index, attempt),
                   temperature=request.temperature or RETRY_TEMPERATURE)


def retry_seed(seed: int | None, index: int, attempt: int) -> int | None:
    """A new seed for asking sample ``index`` again (``attempt`` 1, 2, ...) after its reply failed its schema."""
    if seed is None:
        return None
    digest = hashlib.sha256(f"{seed}:{index}:retry:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


async def repair_replies(ask: Callable[[Request], Awaitable[list[str] | None]], request: Request,
                         texts: list[str], retries: int = 2) -> tuple[list[str], int]:
    """``(texts, retries used)``: each reply that fails the request's schema (a server that ignores
    ``response_format``, a reply cut off mid-JSON, none sent) is asked again alone through ``ask``
    (:func:`retry_request`), up to ``retries`` times; the last answer stands and the caller's parser counts
    it. ``ask`` returning ``None`` (the teacher failed) ends that reply's retries. One rule for every backend;
    the engine's ``ask`` checkpoints each retry under its own key, so a killed run never sends an answered
    retry again."""
    if not request.schema or retries <= 0:
        return texts, 0
    used = 0

    async def fix(k: int, text: str) -> str:
        nonlocal used
        for attempt in range(1, retries + 1):
            if schema_problem(request.schema, text) is None:
                break
            used += 1
            again = await ask(retry_request(request, k, attempt))
            if not again:
                break
            text = again[0]
        return text

    return list(await asyncio.gather(*(fix(k, t) for k, t in enumerate(texts)))), used


async def complete_checked(teacher: Teacher, request: Request, retries: int = 2) -> tuple[list[str], int]:
    """The teacher's replies to ``request``, repaired by :func:`repair_replies` (without a checkpoint)."""
    return await repair_replies(teacher.complete, request, await teacher.complete(request), retries)


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
