"""What a running job holds: its deadline, a forge that stops writing once the deadline passed, and the
bookkeeping that makes every check run we open findable (and endable) by another worker.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .config import BotSettings
from .forge import STICKY_MARKER, CheckOutput, Forge
from .jobs import Job
from .preview import Previewer
from .render import compose, parse_sticky
from .state import CheckRecord, State

_WRITES = ("create_check_run", "update_check_run", "create_comment", "edit_comment", "add_labels",
           "dispatch_workflow")


class DeadlineExceeded(Exception):
    """The job ran past its deadline; raised inside the job's thread at its next forge call."""


class Deadline:
    """A hard stop for one job. ``expire`` waits for an in-flight forge write, then blocks all later ones."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.lock = threading.Lock()
        self._expired = threading.Event()

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self._expired.is_set() or time.monotonic() >= self.at

    def check(self) -> None:
        if self.expired:
            raise DeadlineExceeded(f"the job ran past its {self.seconds:.0f} s deadline")

    def expire(self, wait_s: float = 30.0) -> None:
        got = self.lock.acquire(timeout=wait_s)
        self._expired.set()
        if got:
            self.lock.release()


class GuardedForge:
    """A forge proxy: every call checks the deadline; writes hold the deadline lock so none lands after it."""

    def __init__(self, forge: Forge, deadline: Deadline) -> None:
        self._forge = forge
        self._deadline = deadline

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._forge, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            if name in _WRITES:
                with self._deadline.lock:
                    self._deadline.check()
                    return method(*args, **kwargs)
            self._deadline.check()
            return method(*args, **kwargs)

        return call


def owner_id() -> str:
    """host:pid of this worker process (computed per call: forked workers have their own pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class JobContext:
    """Everything a handler may touch. ``forge`` is guarded by ``deadline``."""

    job: Job
    forge: Forge
    state: State
    settings: BotSettings
    deadline: Deadline
    previewer: Previewer | None = None
    sleep: Callable[[float], None] = time.sleep
    submit: Callable[[Job], bool] | None = None  # queue more work (a head the bot had missed)

    def open_check(self, name: str, sha: str, output: CheckOutput) -> int:
        """Open (or, on a retry of the same job, reuse) this job's check run, and record it in the job's lease.

        On a later attempt, a run whose creation GitHub applied but whose answer was lost is found by its
        ``external_id`` (the job id) instead of being opened twice."""
        record = self.state.get_check(self.job.id)
        if record is not None and record.check_id:
            self.forge.update_check_run(record.repo, record.check_id, output)
            return record.check_id
        check_id = 0
        if record is None or record.attempts > 1 or self.job.rerun:
            check_id = self.forge.find_check_run(self.job.repo, sha, name, self.job.id)
            if check_id:
                self.forge.update_check_run(self.job.repo, check_id, output)
        if not check_id:
            check_id = self.forge.create_check_run(self.job.repo, sha, name, output, external_id=self.job.id)
        now = time.time()
        lease = CheckRecord(job=self.job.to_dict(), repo=self.job.repo, check_id=check_id, owner=owner_id(),
                            deadline=now + self.deadline.remaining(), heartbeat=now)
        self.state.open_check(replace(record, check_id=check_id) if record is not None else lease)
        return check_id

    def finish_check(self, check_id: int, conclusion: str, output: CheckOutput) -> None:
        """Complete the run, then drop it from the lease (if completing fails, it stays for the sweeper); the
        lease itself lasts until the whole job is done."""
        self.forge.update_check_run(self.job.repo, check_id, output, conclusion=conclusion)
        record = self.state.get_check(self.job.id)
        if record is not None:
            self.state.open_check(replace(record, check_id=0))

    def update_sticky(self, **sections: str) -> None:
        """Replace some sections of the PR's one sticky comment (creating it the first time), under a lock so
        two workers never create two comments."""
        repo, pr = self.job.repo, self.job.pr
        lock = f"sticky:{repo}#{pr}"
        waited = 0.0
        while not self.state.claim("lock", lock, 60.0):
            if waited > 30.0 or self.deadline.expired:
                break  # a crashed holder; its TTL is the real guard, go on rather than lose the update
            self.sleep(0.1)
            waited += 0.1
        try:
            existing = self.forge.find_comment(repo, pr, STICKY_MARKER, self.settings.bot_login)
            current = parse_sticky(existing.body) if existing else {}
            current.update(sections)
            body = compose(current)
            if existing is None:
                self.forge.create_comment(repo, pr, body)
            elif body != existing.body:
                self.forge.edit_comment(repo, existing.id, body)
        finally:
            self.state.release("lock", lock)
