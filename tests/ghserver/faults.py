"""Fault injection and the request log, mixed into :class:`State` (sharing its lock)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from .models import Fault, LoggedRequest


class Recorder:
    """Faults to inject, requests seen, and errors that must fail the test."""

    lock: threading.RLock
    faults: list[Fault]
    requests: list[LoggedRequest]
    errors: list[BaseException]

    def inject_fault(
        self,
        path: str,
        *,
        status: int | None = 500,
        times: int = 1,
        delay: float = 0.0,
        method: str | None = None,
        body: Any = None,
        mutate: Callable[[Any], Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """Misbehave on the next `times` requests whose path fully matches the regex `path`.

        The path is the URL path without `/api/v3` and without the query (`/repos/o/r/pulls/1`, or
        `/o/r.git/git-upload-pack` for git). `status=None` + `delay` = slow but correct answer;
        `mutate(body)` corrupts a correct JSON body (then validated: proves the spec check bites);
        `headers` go with a `status` answer (`Retry-After`, `X-RateLimit-Reset`...).
        """
        fault = Fault(re.compile(path), method.upper() if method else None, status, delay, times, body, mutate,
                      headers=headers)
        with self.lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method in (None, method) and fault.path.fullmatch(path):
                    fault.times -= 1
                    fault.hits += 1
                    return fault
        return None

    def calls(self, operation: str | None = None) -> list[LoggedRequest]:
        """Requests seen so far, optionally only those of one `"METHOD /template"` operation."""
        with self.lock:
            return [r for r in self.requests if operation in (None, r.operation)]
