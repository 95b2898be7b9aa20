"""Run one leaf's pipeline against a teacher, asynchronously and deterministically.

Within a step every request is submitted at once (the teacher caps in-flight requests), but
results are consumed in submission order, and each request's seed derives from (run seed,
leaf hash, step, row index): a deterministic teacher therefore gives byte-identical output no
matter how replies interleave. Failures are counted by reason on the step; nothing a teacher
does raises out of a leaf.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2.exceptions import TemplateError

from labrador.trainer.teachers.base import Request, Teacher, repair_replies

from .checkpoint import CheckpointStore
from .leaf import LeafSpec
from .limits import Limits
from .pipeline import Pipeline, step_label
from .prompting import MAX_RENDERED, Prompt, build_request, defang
from .stats import LeafStats, StepStats
from .steps import REGISTRY, Row

MAX_REPLY_CHARS = MAX_RENDERED  # a longer reply could never be rendered into a later step's prompt


@dataclass(frozen=True)
class ProgressEvent:
    """``phase`` is start/advance/end; ``done``/``total`` count requests (or rows for local steps)."""

    leaf: str
    step: str
    index: int
    steps: int
    phase: str
    done: int
    total: int


Progress = Callable[[ProgressEvent], None]


def derive_seed(run_seed: int, leaf_hash: str, step: int, row: str) -> int:
    """A 31-bit request seed from the row's lineage id (``s2.0.3``), not from timing or from how many
    sibling rows were filtered out, so one failed request does not change any other sample."""
    digest = hashlib.sha256(f"{run_seed}:{leaf_hash}:{step}:{row}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass
class LeafRun:
    """What a step may use: the leaf, prompts, limits, the teacher (through :meth:`ask`) and counters."""

    leaf: LeafSpec
    teacher: Teacher
    prompts: Mapping[str, Prompt]
    pipeline: Pipeline
    documents: Sequence[tuple[str, bytes]] = ()
    seed: int = 0
    limits: Limits = field(default_factory=Limits)
    store: CheckpointStore | None = None
    progress: Progress | None = None
    stats: LeafStats = field(default_factory=LeafStats)
    step_index: int = 0
    step: StepStats = field(default_factory=lambda: StepStats("", ""))
    _inflight: dict[str, asyncio.Future[list[str] | None]] = field(default_factory=dict)
    _done: int = 0
    _total: int = 0

    @property
    def pipeline_label(self) -> str:
        return self.pipeline.label

    def drop(self, reason: str, count: int = 1) -> None:
        if count:
            self.step.dropped[reason] += count

    def cap(self, rows: list[Row], limit: int | None = None) -> list[Row]:
        limit = self.limits.max_rows if limit is None else limit
        if limit is not None and len(rows) > limit:
            self.drop("capped", len(rows) - limit)
            return rows[:limit]
        return rows

    def prompt(self, name: str) -> Prompt:
        return self.prompts[name]

    def request(self, prompt: Prompt, row: Row, *, n: int | None = None) -> Request | None:
        """Render ``prompt`` for ``row``; ``None`` (counted ``render_error``) if the template cannot."""
        variables: dict[str, Any] = dict(prompt.vars)
        if self.limits.num is not None and "num" in variables:
            variables["num"] = min(int(variables["num"]), self.limits.num)
        variables.update((k, defang(v)) for k, v in row.items() if not k.startswith("_"))  # hostile text
        variables["leaf"] = defang(self.leaf.info)
        seed = derive_seed(self.seed, self.leaf.hash, self.step_index, row["_id"])
        try:
            cap = self.limits.judge_max_tokens if prompt.is_judge and self.limits.judge_max_tokens else \
                self.limits.max_tokens
            request = build_request(prompt, variables, seed=seed, n=n, max_tokens=cap,
                                    structured=self.limits.structured, max_temperature=self.limits.max_temperature)
            if prompt.schema is not None and not self.step.structured:
                self.step.structured = "schema" if request.schema else "words"
            return request
        except (TemplateError, ValueError) as exc:
            self.drop("render_error")
            self.stats.note_error(f"{prompt.name}: {type(exc).__name__}: {exc}")
            return None

    async def ask(self, requests: Sequence[Request | None]) -> list[list[str] | None]:
        """Texts per request in submission order; ``None`` where it failed (counted ``teacher_error``)."""
        out: list[list[str] | None] = []
        self._done, self._total = 0, sum(r is not None for r in requests)
        window = max(1, self.limits.window)
        for start in range(0, len(requests), window):
            part = requests[start : start + window]
            results = iter(await asyncio.gather(*(self._one(r) for r in part if r is not None)))
            out.extend(next(results) if r is not None else None for r in part)
        return out

    async def _one(self, request: Request) -> list[str] | None:
        self.step.requests += 1
        texts = await self._fetch(request, counted=True)
        if texts is None:
            self.drop("teacher_error")
        elif request.schema and self.limits.parse_retries:
            texts, used = await repair_replies(self._fetch, request, texts, self.limits.parse_retries)
            self.step.schema_retries += used
        self._done += 1
        self._report("advance", self._done, self._total)
        return texts

    async def _fetch(self, request: Request, counted: bool = False) -> list[str] | None:
        """The texts for ``request`` from the checkpoint, or sent (identical requests in flight at once are sent
        once) and checkpointed; ``None`` if the teacher failed. ``counted``: a pipeline request (a schema retry
        is counted apart, in ``schema_retries``)."""
        key = request.key()
        cached = self.store.get(key) if self.store is not None else None
        if cached is not None and len(cached) == request.n and not _oversized(cached):  # an old run's huge reply:
            # asked again, never served
            self.step.cached += counted
            return cached
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._send(request, key, counted))
            self._inflight[key] = future
        return await future

    async def _send(self, request: Request, key: str, counted: bool) -> list[str] | None:
        self.step.sent += counted
        try:
            texts = await self.teacher.complete(request)
            if request.schema and getattr(self.teacher, "structured", None) is False:
                self.step.structured = "words"  # the server refused the field: the prompt's words alone ask
        except Exception as exc:  # TeacherError, or a backend bug: counted, never raised out of the leaf
            self.stats.note_error(f"{type(exc).__name__}: {exc}")
            return None
        finally:
            self._inflight.pop(key, None)
        if not isinstance(texts, list) or len(texts) != request.n or not all(isinstance(t, str) for t in texts):
            self.stats.note_error(f"teacher returned {type(texts).__name__} instead of {request.n} texts")
            return None
        if _oversized(texts):  # a teacher error (the leaf stays partial and is asked again), never checkpointed
            self.stats.note_error(f"teacher reply of {max(map(len, texts)):,} characters is over the bound of "
                                  f"{MAX_REPLY_CHARS:,}: dropped")
            return None
        if self.store is not None:
            self.store.put(key, texts)  # no await between the reply and the write
        return texts

    def _report(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(self.leaf.relpath, self.step.label, self.step_index,
                                        len(self.pipeline.steps), phase, done, total))


def _oversized(texts: Sequence[Any]) -> bool:
    return any(isinstance(t, str) and len(t) > MAX_REPLY_CHARS for t in texts)


async def run_pipeline(ctx: LeafRun) -> list[Row]:
    """Run every step in order; returns the final (formatted) samples. Step stats land in ``ctx.stats``."""
    rows: list[Row] = []
    for index, config in enumerate(ctx.pipeline.steps):
        ctx.step_index = index
        ctx.step = StepStats(step_label(index, config), config["type"], rows_in=len(rows))
        ctx.stats.steps.append(ctx.step)
        ctx._report("start", 0, len(rows))
        started = time.perf_counter()
        rows = await REGISTRY[config["type"]].run(config, rows, ctx)
        ctx.step.seconds = time.perf_counter() - started
        ctx.step.rows_out = len(rows)
        ctx._report("end", len(rows), len(rows))
    return rows
