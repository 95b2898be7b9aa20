"""Run one job under a hard deadline with heartbeats; end orphaned check runs whose worker died.

Why: upstream's bot left checks "in progress" forever when a worker died. Here every check run we open is
recorded durably (``state``); the job's own runner ends it on error or deadline, and any worker's sweep ends
it when its owner is gone (dead pid on this host, stale heartbeat, or long past its deadline), then queues the
work again a bounded number of times.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from labrador.validators.gitfetch import FetchBudget, fetch_budget, prune_cache
from labrador.validators.locks import pid_alive

from .config import BotSettings
from .context import Deadline, DeadlineExceeded, GuardedForge, JobContext, owner_id
from .forge import CheckOutput, Forge, RateLimited
from .gitcache import redact
from .handlers import handle
from .jobs import Job
from .preview import Previewer
from .queue import PENDING
from .state import UNWRITTEN, CheckRecord, State

log = logging.getLogger("labrador.bot.runner")

MAINTENANCE_S = 3600.0  # how often the caches and the state are pruned
ForgeFactory = Callable[[Job], Forge]
Handler = Callable[[Job, JobContext], None]


class Runner:
    """Executes jobs for a queue (``queue.runner = runner``); one per worker process."""

    def __init__(self, settings: BotSettings, state: State, forge_for: ForgeFactory,
                 previewer: Previewer | None = None, submit: Callable[..., bool] | None = None,
                 handler: Handler = handle) -> None:
        self.settings = settings
        self.state = state
        self.forge_for = forge_for
        self.previewer = previewer
        self.submit = submit
        self.handler = handler
        self.queued_ids: Callable[[], set[str]] | None = None  # ids still in the queue (set by build_worker)
        self._queued_cache: set[str] | None = None
        self._running: dict[str, tuple[Job, Deadline, FetchBudget]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def __call__(self, job: Job, retries_left: int = 0) -> None:
        self.run(job, retries_left)

    def run(self, job: Job, retries_left: int = 0) -> None:
        """Run ``job`` in a thread; beat while it runs; on the deadline, block its writes, cancel its fetches
        and time it out. Raises the job's error when retries are left (huey retries it; its lease and check run
        stay and are reused)."""
        settings = self.settings
        deadline = Deadline(settings.job_deadline_s)
        budget = FetchBudget(settings.job_deadline_s, settings.fetch_max_bytes, settings.fetch_timeout_s)
        forge = self.forge_for(job)
        with self._lock:  # running before the lease names us: a sweep in between must not see an orphan
            self._running[job.id] = (job, deadline, budget)
        try:
            self._take(job, deadline)
        except BaseException:
            with self._lock:
                self._running.pop(job.id, None)
            raise
        ctx = JobContext(job, GuardedForge(forge, deadline), self.state, settings, deadline, self.previewer,
                         submit=self.submit)
        outcome: dict[str, BaseException] = {}

        def body() -> None:
            try:
                with fetch_budget(budget):
                    self.handler(job, ctx)
            except BaseException as exc:  # noqa: BLE001 - reported below, whatever it is
                outcome["error"] = exc

        thread = threading.Thread(target=body, name=f"labrador-job-{job.id[:8]}", daemon=True)
        try:
            thread.start()
            try:
                while thread.is_alive() and not deadline.expired and not self._stopping.is_set():
                    thread.join(min(settings.heartbeat_s, max(0.01, deadline.remaining())))
                    self.state.beat(job.id, time.time())
            except KeyboardInterrupt:  # a forked worker (--worker-type process) told to stop now: hand it back
                self.shutdown()
                raise
            if self._stopping.is_set():
                return  # shutdown() hands it back to the queue (at least once: never lost, perhaps run again)
            error = outcome.get("error")
            if thread.is_alive() or isinstance(error, DeadlineExceeded) or (error is not None and deadline.expired):
                self._stop(job.id)
                log.warning("job %s (%s) ran past its %.0f s deadline", job.id, job.key, settings.job_deadline_s)
                self._end(forge, job, "timed_out", CheckOutput(
                    "Timed out", f"The job did not finish within {settings.job_deadline_s:.0f} seconds. "
                    "Comment `/lab retry` to try again."), budget)
                return
            if error is None:
                self._end(forge, job, "failure", CheckOutput(
                    "Internal error", "The job ended without completing this check run. Comment `/lab retry` to "
                    "try again."), budget, unfinished_only=True)
                return
            if retries_left > 0:
                self.state.beat(job.id, time.time() + settings.retry_delay_s)  # alive until the retry starts
                log.warning("job %s failed (%s); %d retr(ies) left", job.id, type(error).__name__, retries_left)
                raise error
            log.error("job %s failed: %s", job.id, redact(repr(error)))
            self._end(forge, job, "failure", CheckOutput(
                "Internal error", f"The bot failed while running this check ({_why(error)}). "
                "Maintainers can find the details in the worker log; comment `/lab retry` to try again."), budget)
        finally:
            with self._lock:
                self._running.pop(job.id, None)

    def _take(self, job: Job, deadline: Deadline) -> None:
        """Write (or take over) the job's lease before any work: from here on a crash loses nothing."""
        now = time.time()
        record = self.state.get_check(job.id)
        lease = CheckRecord(job=job.to_dict(), repo=job.repo, check_id=record.check_id if record else 0,
                            owner=owner_id(), deadline=now + deadline.remaining(), heartbeat=now,
                            attempts=record.attempts + 1 if record else 1)
        self.state.open_check(lease)

    def _stop(self, job_id: str) -> None:
        """Stop a job's side effects: no forge write and no fetch from now on, no more rate-limit waiting."""
        with self._lock:
            entry = self._running.get(job_id)
        if entry is None:
            return
        _, deadline, budget = entry
        budget.cancelled.set()  # (a rate-limit wait in the job ends too)
        deadline.expire(wait_s=min(30.0, self.settings.shutdown_grace_s))

    def shutdown(self) -> list[Job]:
        """The worker is stopping (SIGTERM after the grace period): stop every job still running and hand it
        back to the queue under the same id, so the next worker reuses its check run. Returns those jobs."""
        self._stopping.set()
        with self._lock:
            entries = list(self._running.values())
        handed: list[Job] = []
        for job, *_ in entries:
            self._stop(job.id)
            if self.submit is not None and self.submit(job, self.state.get_check(job.id)):  # lease and check run kept
                handed.append(job)
                log.warning("job %s (%s) was still running at shutdown: queued again", job.id, job.key)
                continue
            # the same work is already pending under another id: that job does it, with its own check run
            forge = self.forge_for(job)
            self._end(forge, job, "cancelled", CheckOutput("Superseded", "The worker stopped; the same work is "
                                                           "queued and will report in a new check run."))
        return handed

    def _end(self, forge: Forge, job: Job, conclusion: str, output: CheckOutput, budget: FetchBudget | None = None,
             unfinished_only: bool = False) -> None:
        """Release the job's lease, completing its check run if it opened one (``unfinished_only``: the job
        returned normally, so its handler completed the run unless it forgot); leave the lease if GitHub
        refuses, for the sweep to try again. Under the job's ``budget``, a rate limit is waited out only as
        long as the job itself could have (not at all once it was stopped)."""
        record = self.state.get_check(job.id)
        if record is None:
            return
        if not record.check_id:
            self.state.close_check(job.id)
            return
        if unfinished_only:
            log.error("job %s returned without completing its check run %s", job.id, record.check_id)
        try:
            with fetch_budget(budget) if budget is not None else contextlib.nullcontext():
                forge.update_check_run(record.repo, record.check_id, output, conclusion=conclusion)
        except Exception as exc:  # the sweep writes this ending once GitHub accepts writes again
            log.error("could not end check run %s (%s): every sweep tries again to write its %s ending",
                      record.check_id, redact(str(exc))[:300], conclusion)
            self.state.open_check(replace(record, owner=UNWRITTEN, heartbeat=time.time(), result={
                "conclusion": conclusion, "title": output.title, "summary": output.summary}))
            return
        self.state.close_check(job.id)

    def is_orphan(self, record: CheckRecord, now: float | None = None) -> bool:
        """Dead owner on this host, no heartbeat for ``stale_after_s``, or well past its deadline."""
        now = time.time() if now is None else now
        with self._lock:
            if record.job_id in self._running:
                return False
        if record.unwritten:
            return True  # done, but its ending is still to be written
        if record.heartbeat > now:
            return False  # waiting for its retry: huey's schedule holds it, durably
        stale = self.settings.stale_after_s
        if record.queued:  # waiting in the queue: whoever dequeues it takes it over
            return now - record.heartbeat > stale and record.job_id not in self._queued()
        host, _, pid = record.owner.rpartition(":")
        dead = host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid))
        lost = dead or now - record.heartbeat > stale or now > record.deadline + stale
        # a lease of this very worker that is not running is between the queue and a worker (a retry waiting its
        # turn behind a flood): only the stale rule can make it lost; and a job still in the queue or its
        # schedule is never lost, whoever owned it, since whoever dequeues it takes it over
        return lost and record.job_id not in self._queued()

    def _queued(self) -> set[str]:
        """Job ids in the queue, read once per sweep (only when a stale queued lease asks)."""
        if self._queued_cache is None:
            self._queued_cache = self.queued_ids() if self.queued_ids is not None else set()
        return self._queued_cache

    def sweep(self, now: float | None = None) -> list[CheckRecord]:
        """End every orphaned check run as ``timed_out`` and queue its job again (bounded); returns the
        orphaned leases (with or without a check run)."""
        ended = []
        self._queued_cache = None
        no_wait = FetchBudget(0.0, self.settings.fetch_max_bytes)  # the sweep shares a worker: it never sleeps
        for record in self.state.open_checks():
            if not self.is_orphan(record, now) or not self.state.close_check(record.job_id):
                continue  # alive, or another sweeper got it first
            job = Job.from_dict(record.job)
            rerun = self.submit is not None and job.rerun < self.settings.orphan_reruns
            if record.queued:  # lost on its way from the queue: its pending mark would swallow the new one
                self.state.release(PENDING, job.key)
            if not record.check_id:  # lost before it opened a check run: nothing to end on GitHub
                log.warning("job %s (%s) lost its worker %s before opening a check run%s", job.id, job.key,
                            record.owner, ": queued again" if rerun else "")
                ended.append(record)
                if rerun and self.submit is not None:
                    self.submit(job.again())
                continue
            if record.unwritten and record.result:  # the job's own ending, refused by GitHub when it finished
                output = CheckOutput(record.result["title"], record.result["summary"])
                conclusion, rerun = record.result["conclusion"], False
            else:
                summary = "The worker running this check stopped before it finished."
                summary += " It has been queued again." if rerun else " Comment `/lab retry` to run it again."
                output, conclusion = CheckOutput("Worker lost", summary), "timed_out"
            try:
                with fetch_budget(no_wait):  # a rate limit is never waited out here: the next sweep tries again
                    self.forge_for(job).update_check_run(record.repo, record.check_id, output, conclusion=conclusion)
            except Exception as exc:
                log.error("could not end check run %s of job %s (%s); the next sweep tries again", record.check_id,
                          job.id, redact(str(exc))[:300])
                self.state.open_check(record)  # keep it for the next sweep
                continue
            log.warning("ended orphaned check run %s of job %s (owner %s)", record.check_id, job.id, record.owner)
            ended.append(record)
            if rerun and self.submit is not None:
                self.submit(job.again())
        self.maintain()
        return ended

    def maintain(self, now: float | None = None, force: bool = False) -> dict[str, int]:
        """At most once an hour across all workers: drop expired delivery ids, claims and old head logs, and
        prune the git caches (the bot's and the document checker's) by age and size. Returns what went."""
        now = time.time() if now is None else now
        if not force and not self.state.claim("maintenance", "prune", MAINTENANCE_S):
            return {}
        settings = self.settings
        max_age = settings.git_cache_max_age_days * 86400
        caches = (settings.work_path / "git", settings.checker.repo_cache_dir() / "repos")
        done = {"records": self.state.prune(now),
                "repositories": sum(len(prune_cache(c, settings.git_cache_max_bytes, max_age, now)) for c in caches)}
        if any(done.values()):
            log.info("maintenance: dropped %(records)d expired record(s), pruned %(repositories)d cached "
                     "repositor(ies)", done)
        return done


def _why(error: BaseException) -> str:
    """What a contributor may read about a failure: the type, and the message of our own rate-limit error."""
    return str(error)[:300] if isinstance(error, RateLimited) else type(error).__name__


__all__ = ["Runner", "owner_id"]
