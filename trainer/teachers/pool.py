"""One teacher over many OpenAI-compatible endpoints (vLLM replicas, one per GPU node): how generation
scales out.

Each request goes to the healthy endpoint with the fewest requests in flight, under the teacher's one
``max_concurrency`` and a per-endpoint cap. An endpoint that keeps failing (refused connections, timeouts
and answers too slow to finish within the deadline, 5xx, non-JSON, after its own short retries) is taken out
for a back-off period and the request is asked again elsewhere; one that refuses the key or answers as
another model is left out for the rest of the run. A request is only ever answered once, by whichever
endpoint answered it. All endpoints must serve the same model (checked at start, and on every reply: mixing
two teachers would break the cache keys); one that is down at start is left out, and said so. The pool's
``name`` names the model, not the endpoints, so the generation cache and request checkpoints do not depend
on which replica answered, nor on how many there are.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .base import Request, TeacherError, TeacherUnavailable


@dataclass
class Endpoint:
    teacher: Any  # an OpenAIHTTPTeacher for one base URL
    in_flight: int = 0
    sent: int = 0  # requests given to it (observable: how the load was spread)
    answered: int = 0
    failures: int = 0  # consecutive failed requests
    out_until: float = 0.0  # monotonic time it is back in the pool (inf: left out for the rest of the run)
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=10))  # the latest failures, kept bounded


def _say(text: str) -> None:
    print(f"teacher pool: {text}", file=sys.stderr, flush=True)


class PooledTeacher:
    """``complete`` on the least-loaded healthy endpoint; a failing endpoint is benched for ``backoff_s``
    after ``failures_to_bench`` failures in a row, and its request retried on another (``max_tries`` in all)."""

    def __init__(self, urls: list[str], *, max_concurrency: int = 8, per_endpoint: int = 0,
                 backoff_s: float = 30.0, failures_to_bench: int = 2, max_tries: int = 0,
                 member_attempts: int = 2, say: Callable[[str], None] = _say, **options: Any) -> None:
        from .openai_http import OpenAIHTTPTeacher, model_identity

        if len(urls) < 2:
            raise ValueError("a teacher pool needs at least two endpoints (one is an ordinary HTTP teacher)")
        twice = sorted(u for u in set(urls) if urls.count(u) > 1)
        if twice:
            raise ValueError(f"teacher endpoints listed twice: {', '.join(twice)}")
        if max_concurrency < 1 or per_endpoint < 0:
            raise ValueError("max_concurrency must be >= 1 and the per-endpoint cap >= 0")
        self.max_concurrency = max_concurrency
        self.per_endpoint = per_endpoint or max_concurrency
        self.backoff_s, self.failures_to_bench = backoff_s, failures_to_bench
        self.max_tries = max_tries or 2 * len(urls) + 2
        self.say = say
        self.endpoints: list[Endpoint] = []
        down: list[str] = []
        for u in urls:
            try:
                self.endpoints.append(Endpoint(OpenAIHTTPTeacher(u, max_concurrency=self.per_endpoint,
                                                                 max_attempts=member_attempts, check_model=True,
                                                                 **options)))
            except TeacherError as exc:  # down at start (model discovery failed): the others may carry the run
                down.append(str(exc))
        if not self.endpoints:
            raise TeacherUnavailable(f"no teacher endpoint answered at start: {'; '.join(down)}")
        for why in down:
            say(f"left out (down at start): {why}; going on with {len(self.endpoints)} of {len(urls)} endpoints")
        models = {e.teacher.model for e in self.endpoints}
        if len(models) > 1:
            listed = "; ".join(f"{e.teacher.base_url} serves {e.teacher.model!r}" for e in self.endpoints)
            raise ValueError(f"the teacher endpoints serve different models ({listed}): one teacher must be one "
                             "model, or the cache would mix them. Point every endpoint at the same model (or "
                             "name it with URL#MODEL)")
        self.model = models.pop()
        self.name = self.cache_id = model_identity(self.model)
        self.in_flight = self.max_in_flight = 0
        self._changed: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"PooledTeacher({self.name!r}, {len(self.endpoints)} endpoints)"

    @property
    def sent(self) -> list[int]:
        return [e.sent for e in self.endpoints]

    @property
    def structured(self) -> bool | None:
        """False once any endpoint refused the reply schema (some replies came without it), True when every
        endpoint that was asked took it, ``None`` before any was asked (the engine's manifest reads this)."""
        known = [e.teacher.structured for e in self.endpoints if e.teacher.structured is not None]
        return None if not known else all(known)

    async def complete(self, request: Request) -> list[str]:
        last = "no endpoint tried"
        for _ in range(self.max_tries):
            ep = await self._acquire()
            try:
                texts = await ep.teacher.complete(request)
            except TeacherUnavailable as exc:  # EndpointFailed too: every failure of an endpoint counts
                last = str(exc)
                self._failed(ep, last, for_run=getattr(exc, "for_run", False))
                continue
            finally:
                await self._release(ep)
            ep.failures = 0
            ep.answered += 1
            return texts
        raise TeacherError(f"{self.name}: no endpoint answered after {self.max_tries} tries; last: {last}")

    def count_tokens(self, text: str) -> int:
        return self.endpoints[0].teacher.count_tokens(text)

    async def aclose(self) -> None:
        for e in self.endpoints:
            await e.teacher.aclose()

    # -- placement -------------------------------------------------------------------------------------

    def _condition(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        if self._changed is None or self._loop is not loop:
            self._changed, self._loop = asyncio.Condition(), loop
        return self._changed

    def _pick(self, now: float) -> Endpoint | None | float:
        """The endpoint to use, ``None`` when all healthy ones are busy, or the seconds until one is back."""
        if self.in_flight >= self.max_concurrency:
            return None
        healthy = [e for e in self.endpoints if e.out_until <= now]
        if not healthy:
            back = min(e.out_until for e in self.endpoints)
            if math.isinf(back):
                reasons = "; ".join(e.errors[-1] for e in self.endpoints if e.errors)
                raise TeacherError(f"{self.name}: every endpoint is left out for the rest of the run: {reasons}")
            return back - now
        free = [e for e in healthy if e.in_flight < self.per_endpoint]
        return min(free, key=lambda e: (e.in_flight, e.sent)) if free else None

    async def _acquire(self) -> Endpoint:
        changed = self._condition()
        async with changed:
            while True:
                picked = self._pick(time.monotonic())
                if isinstance(picked, Endpoint):
                    picked.in_flight += 1
                    picked.sent += 1
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                    return picked
                try:  # a release wakes us; a benched endpoint's return is a timeout
                    await asyncio.wait_for(changed.wait(), timeout=picked if isinstance(picked, float) else None)
                except TimeoutError:
                    pass

    async def _release(self, ep: Endpoint) -> None:
        changed = self._condition()
        async with changed:
            ep.in_flight -= 1
            self.in_flight -= 1
            changed.notify_all()

    def _failed(self, ep: Endpoint, why: str, for_run: bool = False) -> None:
        ep.failures += 1
        ep.errors.append(why[:300])
        if for_run:
            if not math.isinf(ep.out_until):
                self.say(f"{ep.teacher.base_url} left out for the rest of the run: {why[:300]}")
            ep.out_until = math.inf
        elif ep.failures >= self.failures_to_bench and not math.isinf(ep.out_until):
            ep.out_until = time.monotonic() + self.backoff_s
            ep.failures = 0
