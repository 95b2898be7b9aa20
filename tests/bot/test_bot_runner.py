"""Every check run ends: deadlines, errors, retries, and orphans left by a worker process killed mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from botkit import EchoPreviewer, FileForge, MemoryForge, Origin, pr_for, settings_for, skill_files

from labrador.bot.context import JobContext
from labrador.bot.forge import CheckOutput
from labrador.bot.jobs import PREVIEW, VALIDATE, Job
from labrador.bot.queue import JobQueue
from labrador.bot.runner import Runner
from labrador.bot.state import CheckRecord, SqliteState
from labrador.bot.worker import build_worker

REPO = "acme/taxonomy"
BASE = skill_files("compositional_skills/a/one")
NEW = skill_files("compositional_skills/new/leaf")
TESTS = Path(__file__).resolve().parents[1]


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Origin, MemoryForge, str]:
    origin = Origin(tmp_path / "origin.git", BASE)
    forge = MemoryForge({REPO: origin.path})
    sha = origin.push_pr(1, {**BASE, **NEW})
    forge.add_pr(pr_for(origin, 1, sha))
    forge.set_permission(REPO, "maria", "write")
    return origin, forge, sha


def test_a_job_past_its_deadline_ends_its_check_run_timed_out(tmp_path: Path, world) -> None:
    _, forge, sha = world
    settings = settings_for(tmp_path, job_deadline_s=0.5)
    state = SqliteState(tmp_path / "s.db")
    runner = Runner(settings, state, lambda job: forge, EchoPreviewer(delay_s=3))
    started = time.monotonic()
    runner.run(Job(PREVIEW, REPO, 1, sha, requester="maria", command="/lab preview"))
    assert time.monotonic() - started < 2.5
    [check] = forge.checks()
    assert (check["status"], check["conclusion"], check["title"]) == ("completed", "timed_out", "Timed out")
    writes = [c for c in forge.calls if c in ("update_check_run", "edit_comment", "create_comment")]
    time.sleep(0.4)  # the abandoned job thread wakes up: it must not write anything any more
    assert [c for c in forge.calls if c in ("update_check_run", "edit_comment", "create_comment")] == writes
    assert state.open_checks() == []


def test_a_job_that_ignores_cancellation_is_still_timed_out(tmp_path: Path, world) -> None:
    _, forge, sha = world
    release = threading.Event()

    def stuck(job: Job, ctx: JobContext) -> None:
        ctx.open_check("Labrador", job.sha, CheckOutput("Working", "..."))
        release.wait(10)  # e.g. a C extension that never returns

    settings = settings_for(tmp_path, job_deadline_s=0.3)
    runner = Runner(settings, SqliteState(tmp_path / "s.db"), lambda job: forge, handler=stuck)
    runner.run(Job(VALIDATE, REPO, 1, sha))
    release.set()
    assert [c["conclusion"] for c in forge.checks()] == ["timed_out"]


def test_an_error_with_retries_keeps_the_run_open_then_reuses_it(tmp_path: Path, world) -> None:
    _, forge, sha = world
    attempts: list[int] = []

    def flaky(job: Job, ctx: JobContext) -> None:
        check_id = ctx.open_check("Labrador", job.sha, CheckOutput("Working", "..."))
        attempts.append(check_id)
        if len(attempts) == 1:
            raise ConnectionError("GitHub answered 502")
        ctx.finish_check(check_id, "success", CheckOutput("Done", "ok"))

    state = SqliteState(tmp_path / "s.db")
    runner = Runner(settings_for(tmp_path), state, lambda job: forge, handler=flaky)
    job = Job(VALIDATE, REPO, 1, sha)
    with pytest.raises(ConnectionError):
        runner.run(job, retries_left=1)
    assert [c["status"] for c in forge.checks()] == ["in_progress"]
    runner.run(job, retries_left=0)
    assert attempts[0] == attempts[1]
    assert [(c["status"], c["conclusion"]) for c in forge.checks()] == [("completed", "success")]


def test_a_final_error_ends_the_run_as_failure_without_leaking_details(tmp_path: Path, world) -> None:
    _, forge, sha = world

    def broken(job: Job, ctx: JobContext) -> None:
        ctx.open_check("Labrador", job.sha, CheckOutput("Working", "..."))
        raise RuntimeError("token ghs_secret123 rejected")

    runner = Runner(settings_for(tmp_path), SqliteState(tmp_path / "s.db"), lambda job: forge, handler=broken)
    runner.run(Job(VALIDATE, REPO, 1, sha))
    [check] = forge.checks()
    assert check["conclusion"] == "failure" and "ghs_secret123" not in check["summary"]


def test_sweep_spares_live_jobs_and_ends_stale_ones(tmp_path: Path, world) -> None:
    _, forge, sha = world
    queue = JobQueue(settings_for(tmp_path, stale_after_s=5))
    runner = Runner(queue.settings, queue.state, lambda job: forge, submit=queue.submit)
    now = time.time()
    live_id = forge.create_check_run(REPO, sha, "Labrador", CheckOutput("x", "y"))
    stale_id = forge.create_check_run(REPO, sha, "Labrador", CheckOutput("x", "y"))
    other_host = "elsewhere:1"  # a worker on another machine: only its heartbeat tells
    live = Job(VALIDATE, REPO, 1, sha)
    stale = Job(VALIDATE, REPO, 2, sha)
    queue.state.open_check(CheckRecord(live.to_dict(), REPO, live_id, other_host, now + 60, heartbeat=now))
    queue.state.open_check(CheckRecord(stale.to_dict(), REPO, stale_id, other_host, now + 60, heartbeat=now - 30))
    ended = runner.sweep()
    assert [r.check_id for r in ended] == [stale_id]
    by_id = {c["id"]: c for c in forge.checks()}
    assert by_id[stale_id]["conclusion"] == "timed_out" and by_id[live_id]["status"] == "in_progress"
    [again] = queue.pending()
    assert (again.pr, again.rerun) == (2, 1)  # queued once more
    assert runner.sweep() == []


WORKER = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from botkit import EchoPreviewer, FileForge, settings_for
from labrador.bot.worker import run_worker
tmp = Path({tmp!r})
forge = FileForge(tmp / "forge.json")
run_worker(settings_for(tmp, job_deadline_s=60, stale_after_s=60), forge_for=lambda job: forge,
           previewer=EchoPreviewer(delay_s={delay}), poll_s=0.05)
"""


def start_worker(tmp: Path, delay: float) -> subprocess.Popen:
    log = open(tmp / f"worker-{delay}.log", "w")  # noqa: SIM115 - closed with the process
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABRADOR_")}
    return subprocess.Popen([sys.executable, "-c", WORKER.format(tests=str(TESTS), tmp=str(tmp), delay=delay)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)


def test_a_killed_worker_leaves_no_check_run_in_progress(tmp_path: Path) -> None:
    origin = Origin(tmp_path / "origin.git", BASE)
    forge = FileForge(tmp_path / "forge.json", {REPO: origin.path})
    sha = origin.push_pr(1, {**BASE, **NEW})
    forge.add_pr(pr_for(origin, 1, sha))
    forge.set_permission(REPO, "maria", "write")
    queue = JobQueue(settings_for(tmp_path, job_deadline_s=60, stale_after_s=60))
    assert queue.submit(Job(PREVIEW, REPO, 1, sha, requester="maria", command="/lab preview"))

    doomed = start_worker(tmp_path, delay=60)  # the teacher hangs: the job is mid-flight
    try:
        wait_for(lambda: any(c["status"] == "in_progress" for c in forge.checks()), what="a check run in progress")
        wait_for(lambda: bool(queue.state.open_checks()), what="the durable check record")
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
    [orphan] = forge.checks()
    assert orphan["status"] == "in_progress"  # what upstream's bot left behind forever

    recovered = start_worker(tmp_path, delay=0)  # a new worker sweeps at start, then runs the job again
    try:
        wait_for(lambda: len(forge.checks()) == 2 and forge.checks()[1]["status"] == "completed",
                 what="the re-run to complete")
        wait_for(lambda: queue.state.open_checks() == [], what="its lease released (a stop before that hands "
                 "the job back, to run again)")
    finally:
        recovered.send_signal(signal.SIGINT)
        recovered.wait(10)
    first, second = forge.checks()
    assert (first["id"], first["conclusion"], first["title"]) == (orphan["id"], "timed_out", "Worker lost")
    assert second["conclusion"] == "success" and second["sha"] == sha
    assert queue.state.open_checks() == []


def test_build_worker_wires_the_runner_and_the_sweep(tmp_path: Path, world) -> None:
    _, forge, sha = world
    queue, runner = build_worker(settings_for(tmp_path), forge_for=lambda job: forge, previewer=EchoPreviewer())
    assert queue.runner is runner and queue.sweeper == runner.sweep
    queue.submit(Job(VALIDATE, REPO, 1, sha))
    assert queue.run_pending() == 1
    assert [c["conclusion"] for c in forge.checks()] == ["success"]


def test_under_a_flood_every_accepted_job_runs_exactly_once(tmp_path: Path, world) -> None:
    """A job waiting for its retry behind a long queue, owned by this very worker, used to look orphaned to
    the sweep (``pid == os.getpid()``), which queued it again: 500 deliveries gave 1,768 executions."""
    _, forge, sha = world
    settings = settings_for(tmp_path, retries=1, retry_delay_s=0.05, heartbeat_s=0.02, stale_after_s=600.0)
    queue = JobQueue(settings)
    executions: dict[str, int] = {}
    completed: dict[str, int] = {}
    lock = threading.Lock()

    def flaky(job: Job, ctx: JobContext) -> None:
        with lock:
            executions[job.key] = n = executions.get(job.key, 0) + 1
        time.sleep(0.002)
        if job.pr % 3 == 0 and n == 1:
            raise RuntimeError("GitHub had a hiccup")  # retried by huey after retry_delay_s
        with lock:
            completed[job.key] = completed.get(job.key, 0) + 1

    runner = Runner(settings, queue.state, lambda job: forge, submit=queue.submit, handler=flaky)
    runner.queued_ids = queue.queued_ids
    queue.runner = runner
    jobs = [Job(VALIDATE, REPO, n, sha) for n in range(1, 151)]
    for job in jobs:
        assert queue.submit(job)
    stop_sweeping = threading.Event()

    def sweeper() -> None:
        while not stop_sweeping.is_set():
            runner.sweep()
            time.sleep(0.005)

    sweeping = threading.Thread(target=sweeper, daemon=True)
    sweeping.start()
    huey = queue.huey
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and len(completed) < len(jobs):
            for task in huey.read_schedule(__import__("datetime").datetime.now(__import__("datetime").UTC)
                                           .replace(tzinfo=None)):
                huey.enqueue(task)  # what the consumer's scheduler does with due retries
            task = huey.dequeue()
            if task is None:
                time.sleep(0.01)
                continue
            try:
                huey.execute(task)
            except Exception:  # noqa: BLE001 - the failed first attempts; huey schedules the retry
                pass
        time.sleep(0.3)
        runner.sweep()
        while (task := huey.dequeue()) is not None:  # anything the sweep queued again runs too (and is counted)
            huey.execute(task)
    finally:
        stop_sweeping.set()
        sweeping.join(5)
    assert completed == {job.key: 1 for job in jobs}
    expected = {job.key: 2 if job.pr % 3 == 0 else 1 for job in jobs}
    assert executions == expected
    assert queue.state.open_checks() == []
