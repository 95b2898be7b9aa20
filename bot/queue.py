"""The durable job queue: huey on SQLite (one machine, no server) or Redis (workers on several machines).

Why huey: tasks survive restarts, retries are built in, and the same code runs embedded or distributed.
Coalescing sits in front of it: while a job with the same (repo, PR, head SHA, kind) is still pending, a
redelivery or a repeated command adds nothing. The "pending" marks live in the same storage as the queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from huey import RedisHuey, SqliteHuey, crontab
from huey.api import Huey

from .config import BotSettings, mask_url
from .jobs import Job
from .state import QUEUED, CheckRecord, RedisState, SqliteState, State

log = logging.getLogger("labrador.bot.queue")
PENDING = "pending"
TASK_NAME = "labrador.run_job"
SWEEP_NAME = "labrador.sweep"

Runner = Callable[[Job, int], None]  # (job, retries left)


def sqlite_path(url: str) -> Path:
    """SQLAlchemy's convention: ``sqlite:///rel.db`` is relative, ``sqlite:////abs.db`` absolute."""
    rest = url[len("sqlite:///"):]
    if not url.startswith("sqlite:///") or not rest:
        raise ValueError(f"queue URL {mask_url(url)!r}: expected sqlite:///PATH")
    return Path(rest).expanduser()


def open_storage(url: str, name: str = "labrador") -> tuple[Huey, State]:
    """The huey instance and the bot state for a queue URL; both in the same storage."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=str(path), results=False), SqliteState(path)
    if scheme in ("redis", "rediss", "unix"):
        huey = RedisHuey(name, url=url, results=False)
        return huey, RedisState(huey.storage.conn, prefix=f"{name}:bot:")
    raise ValueError(f"queue URL {mask_url(url)!r}: use sqlite:///PATH or redis://HOST:PORT/DB")


class JobQueue:
    """Enqueue side (webhook) and execute side (worker) of the same queue; ``runner`` is set in workers only."""

    def __init__(self, settings: BotSettings, name: str = "labrador") -> None:
        self.settings = settings
        self.huey, self.state = open_storage(settings.resolved_queue_url, name)
        self.runner: Runner | None = None
        self.sweeper: Callable[[], Any] | None = None
        self._task = self.huey.task(retries=settings.retries, retry_delay=settings.retry_delay_s, context=True,
                                    name=TASK_NAME)(self._execute)
        self.huey.periodic_task(crontab(minute="*"), name=SWEEP_NAME)(self._sweep)

    def submit(self, job: Job, lease: CheckRecord | None = None) -> bool:
        """Queue ``job`` unless the same work is already pending; True when queued.

        The job's lease is written first (owner "queued"; ``lease``: the one a stopping worker hands back, with
        its check run), so from this call on the job is on record until a worker completes it, even if it is
        lost between the queue and a worker: the sweep queues such a lease again once it is stale and no
        longer in the queue."""
        if not self.state.claim(PENDING, job.key, self.settings.pending_ttl_s):
            log.info("coalesced %s into a pending job", job.key)
            return False
        now = time.time()
        self.state.open_check(replace(lease, owner=QUEUED, heartbeat=now) if lease is not None else
                              CheckRecord(job.to_dict(), job.repo, 0, QUEUED, deadline=now, heartbeat=now,
                                          attempts=0))
        try:
            self._task(job.to_dict())
        except Exception:
            self.state.release(PENDING, job.key)
            if lease is None:
                self.state.close_check(job.id)
            raise
        return True

    def queued_ids(self) -> set[str]:
        """Ids of the jobs waiting in the queue or scheduled for a retry (the sweep's "still queued" test)."""
        tasks = [*self.huey.pending(), *self.huey.scheduled()]
        return {str(t.args[0].get("id")) for t in tasks if t.name.endswith(TASK_NAME) and t.args}

    def pending(self) -> list[Job]:
        """Jobs waiting in the queue (not scheduled retries), oldest first."""
        return [Job.from_dict(t.args[0]) for t in self.huey.pending() if t.name.endswith(TASK_NAME)]

    def _execute(self, data: dict[str, Any], task: Any = None) -> None:
        job = Job.from_dict(data)
        if self.runner is None:
            raise RuntimeError("this process only enqueues; start a worker to run jobs")
        self.state.release(PENDING, job.key)  # from now on a new request is new work
        self.runner(job, int(getattr(task, "retries", 0) or 0))

    def _sweep(self) -> None:
        if self.sweeper is not None:
            self.sweeper()

    def run_pending(self, limit: int = 100) -> int:
        """Execute queued jobs in this process, one after the other (tests, one-shot tools); returns the count."""
        done = 0
        while done < limit and self.huey.pending_count():  # (a Redis dequeue would block when empty)
            task = self.huey.dequeue()
            if task is None:
                break
            self.huey.execute(task)
            done += 1
        return done

    def consumer(self, workers: int = 1, worker_type: str = "thread", poll_s: float = 0.5, **options: Any) -> Any:
        """A huey consumer for these tasks; ``.run()`` blocks and must be called from the main thread.

        An idle worker polls again after 0.1 s, backing off to one poll every ``poll_s`` seconds at most
        (a blocking queue such as Redis waits for work instead of polling).
        """
        return self.huey.create_consumer(workers=workers, worker_type=worker_type, initial_delay=min(0.1, poll_s),
                                         backoff=1.5, max_delay=poll_s, periodic=True,
                                         check_worker_health=True, **options)
