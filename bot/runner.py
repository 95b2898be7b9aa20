"""Run one job under a hard deadline with heartbeats; end orphaned check runs whose worker died.

Why: upstream's bot left checks "in progress" forever when a worker died. Here every check run we open is
recorded durably (``state``); the job's own runner ends it on error or deadline, and any worker's sweep ends
it when its owner is gone (dead pid on this host, stale heartbeat, or long past its deadline), then queues the
work again a bounded number of times.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from validators.procs import pid_alive

from .config import BotSettings
from .context import Deadline, DeadlineExceeded, GuardedForge, JobContext, owner_id
from .forge import CheckOutput, Forge
from .gitcache import redact
from .handlers import handle
from .jobs import Job
from .preview import Previewer
from .state import CheckRecord, State

log = logging.getLogger("labrador.bot.runner")

ForgeFactory = Callable[[Job], Forge]
Handler = Callable[[Job, JobContext], None]


class Runner:
    """Executes jobs for a queue (``queue.runner = runner``); one per worker process."""

    def __init__(self, settings: BotSettings, state: State, forge_for: ForgeFactory,
                 previewer: Previewer | None = None, submit: Callable[[Job], bool] | None = None,
                 handler: Handler = handle) -> None:
        self.settings = settings
        self.state = state
        self.forge_for = forge_for
        self.previewer = previewer
        self.submit = submit
        self.handler = handler
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, job: Job, retries_left: int = 0) -> None:
        self.run(job, retries_left)

    def run(self, job: Job, retries_left: int = 0) -> None:
        """Run ``job`` in a thread; beat while it runs; on the deadline, block its writes and time it out.
        Raises the job's error when retries are left (huey retries it; its check run stays open and reused)."""
        settings = self.settings
        deadline = Deadline(settings.job_deadline_s)
        forge = self.forge_for(job)
        ctx = JobContext(job, GuardedForge(forge, deadline), self.state, settings, deadline, self.previewer)
        outcome: dict[str, BaseException] = {}

        def body() -> None:
            try:
                self.handler(job, ctx)
            except BaseException as exc:  # noqa: BLE001 - reported below, whatever it is
                outcome["error"] = exc

        thread = threading.Thread(target=body, name=f"labrador-job-{job.id[:8]}", daemon=True)
        with self._lock:
            self._running.add(job.id)
        try:
            thread.start()
            while thread.is_alive() and not deadline.expired:
                thread.join(min(settings.heartbeat_s, max(0.01, deadline.remaining())))
                self.state.beat(job.id, time.time())
            error = outcome.get("error")
            if thread.is_alive() or isinstance(error, DeadlineExceeded) or (error is not None and deadline.expired):
                deadline.expire()
                log.warning("job %s (%s) ran past its %.0f s deadline", job.id, job.key, settings.job_deadline_s)
                self._end(forge, job, "timed_out", CheckOutput(
                    "Timed out", f"The job did not finish within {settings.job_deadline_s:.0f} seconds. "
                    "Comment `/lab retry` to try again."))
                return
            if error is None:
                return
            if retries_left > 0:
                self.state.beat(job.id, time.time() + settings.retry_delay_s)  # alive until the retry starts
                log.warning("job %s failed (%s); %d retr(ies) left", job.id, type(error).__name__, retries_left)
                raise error
            log.error("job %s failed: %s", job.id, redact(repr(error)))
            self._end(forge, job, "failure", CheckOutput(
                "Internal error", f"The bot failed while running this check ({type(error).__name__}). "
                "Maintainers can find the details in the worker log; comment `/lab retry` to try again."))
        finally:
            with self._lock:
                self._running.discard(job.id)

    def _end(self, forge: Forge, job: Job, conclusion: str, output: CheckOutput) -> None:
        """Complete this job's open check run, if it opened one; leave the record if GitHub refuses."""
        record = self.state.get_check(job.id)
        if record is None:
            return
        try:
            forge.update_check_run(record.repo, record.check_id, output, conclusion=conclusion)
        except Exception as exc:  # the sweep will try again
            log.error("could not end check run %s: %s", record.check_id, redact(str(exc)))
            return
        self.state.close_check(job.id)

    def is_orphan(self, record: CheckRecord, now: float | None = None) -> bool:
        """Dead owner on this host, no heartbeat for ``stale_after_s``, or well past its deadline."""
        now = time.time() if now is None else now
        with self._lock:
            if record.job_id in self._running:
                return False
        stale = self.settings.stale_after_s
        if now - record.heartbeat > stale or now > record.deadline + stale:
            return True
        host, _, pid = record.owner.rpartition(":")
        if host == socket.gethostname() and pid.isdigit():
            return int(pid) == os.getpid() or not pid_alive(int(pid))
        return False

    def sweep(self, now: float | None = None) -> list[CheckRecord]:
        """End every orphaned check run as ``timed_out`` and queue its job again (bounded); returns them."""
        ended = []
        for record in self.state.open_checks():
            if not self.is_orphan(record, now) or not self.state.close_check(record.job_id):
                continue  # alive, or another sweeper got it first
            job = Job.from_dict(record.job)
            rerun = self.submit is not None and job.rerun < self.settings.orphan_reruns
            summary = "The worker running this check stopped before it finished."
            summary += " It has been queued again." if rerun else " Comment `/lab retry` to run it again."
            try:
                self.forge_for(job).update_check_run(record.repo, record.check_id,
                                                     CheckOutput("Worker lost", summary), conclusion="timed_out")
            except Exception as exc:
                log.error("could not end orphaned check run %s: %s", record.check_id, redact(str(exc)))
                self.state.open_check(record)  # keep it for the next sweep
                continue
            log.warning("ended orphaned check run %s of job %s (owner %s)", record.check_id, job.id, record.owner)
            ended.append(record)
            if rerun and self.submit is not None:
                self.submit(job.again())
        return ended


__all__ = ["Runner", "owner_id"]
