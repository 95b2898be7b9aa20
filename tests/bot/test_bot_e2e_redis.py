"""The bot end to end in its distributed mode: the queue and the bot's state in a real redis-server (loopback).

Same real components as ``test_bot_e2e`` (webhook under uvicorn, signed deliveries from the spec-validated test
GitHub, github3.py forge, git over smart HTTP), with ``queue_url = redis://...``: replay protection and
coalescing through Redis, and two ``labrador bot worker`` processes (each with its own work dir, as on two
machines) sharing one queue.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2ekit import (
    ATTRIBUTION,
    BROKEN_LINES,
    FIXED,
    NEW_DIR,
    NEW_PATH,
    REPO,
    ROOT,
    TWO_LEAVES,
    VALID,
    VALID_PATH,
    Bot,
    annotated,
    open_pr,
    runs,
    sticky,
    stop,
    wait_for,
)
from ghserver import GitHubServer
from loopback import redis_server as start_redis


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throw-away redis-server on a free loopback port, stopped at the end of the module."""
    with start_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The shared server, emptied for each test (the bot's keys use the default ``labrador`` namespace, as the
    ``labrador bot worker`` processes do)."""
    import redis

    with redis.Redis.from_url(redis_server) as client:
        client.flushdb()
    return redis_server


@pytest.fixture
def redis_bot(gh: GitHubServer, tmp_path: Path, redis_url: str) -> Iterator[Bot]:
    bot = Bot(gh, tmp_path / "web", queue_url=redis_url)
    assert type(bot.web_queue.huey).__name__ == "RedisHuey"
    yield bot
    bot.close()


def start_worker(gh: GitHubServer, queue_url: str, work: Path, threads: int = 2,
                 extra: str = "") -> subprocess.Popen:
    """``labrador bot worker`` as its own process with its own work dir (another machine, the same Redis)."""
    work.mkdir(parents=True, exist_ok=True)
    config = work / "labrador.toml"
    config.write_text(f'[bot]\nbot_login = "{gh.state.bot_login}"\nheartbeat_s = 0.2\nretries = 0\n'
                      f'job_deadline_s = 60\nstale_after_s = 60\nworker_poll_s = 0.1\n{extra}', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABRADOR_")}
    env.update(LABRADOR_API_URL=gh.api_url, LABRADOR_APP_ID=str(gh.app_id),
               LABRADOR_APP_PRIVATE_KEY=gh.private_key_pem.decode(), LABRADOR_QUEUE_URL=queue_url,
               LABRADOR_WORK_DIR=str(work / "work"), PYTHONPATH=str(ROOT))
    script = Path(sys.executable).with_name("labrador")
    argv = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from labrador.validators.cli import main; sys.exit(main())"]
    with open(work / "worker.log", "w") as out:
        return subprocess.Popen([*argv, "bot", "worker", "--workers", str(threads), "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)


# -- 1: one PR, and a replayed delivery ---------------------------------------------------------------------------


def test_redis_mode_validates_a_pr_and_a_replayed_delivery_runs_once(gh: GitHubServer, redis_bot: Bot) -> None:
    bot = redis_bot
    pr = open_pr(gh, TWO_LEAVES)
    headers, body = gh.delivery("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    first, again = bot.post(headers, body), bot.post(headers, body)
    assert first.status_code == 202 and first.json()["status"] == "queued"
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "delivery": headers["X-GitHub-Delivery"]}
    redelivered = bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))  # a new id
    assert redelivered.json()["status"] == "duplicate"  # the same signed body, recognised by its hash in Redis
    pushed = bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "synchronize"))  # same head
    assert pushed.json() == {"status": "queued", "jobs": [], "coalesced": 1}  # into the pending job, via Redis
    assert [j.sha for j in bot.web_queue.pending()] == [pr.head_sha]
    assert bot.work() == 1
    assert bot.work() == 0

    [run] = runs(gh, pr.head_sha)
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert annotated(run) == {(NEW_PATH, line, "failure") for line in BROKEN_LINES}
    assert run.external_id and run.title.startswith("2 error(s)")
    note = sticky(gh, pr.number)
    assert "Validation failed" in note.body and pr.head_sha[:12] in note.body
    assert bot.web_queue.state.open_checks() == []

    assert bot.post(headers, body).status_code == 200  # still a replay after the job ran (the claim outlives it)
    assert bot.web_queue.pending() == [] and bot.work() == 0
    assert runs(gh, pr.head_sha) == [run] and sticky(gh, pr.number).id == note.id


# -- 2: two worker processes, a burst of PRs ----------------------------------------------------------------------

BURST = 8
EXECUTING = re.compile(r"Executing \S*labrador\.run_job:")


def test_two_worker_processes_share_the_redis_queue_and_run_each_job_once(
        gh: GitHubServer, redis_bot: Bot, redis_url: str, tmp_path: Path) -> None:
    bot = redis_bot
    # git answers a little slowly, so that jobs overlap and both workers get some
    gh.state.inject_fault(r"/org/taxonomy\.git/.*", status=None, delay=0.3, times=1000)
    workers = [start_worker(gh, redis_url, tmp_path / f"worker-{i}") for i in (1, 2)]
    try:
        prs = [open_pr(gh, {**(TWO_LEAVES if i % 2 else {NEW_PATH: FIXED, f"{NEW_DIR}/attribution.txt": ATTRIBUTION}),
                            VALID_PATH: VALID.replace(b"alice", b"alice%d" % i)})  # (each PR its own head)
               for i in range(BURST)]
        assert len({pr.head_sha for pr in prs}) == BURST
        for pr in prs:  # each delivery twice (a replay); the copy queues nothing
            headers, body = gh.delivery("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
            assert bot.post(headers, body).status_code == 202
            assert bot.post(headers, body).json()["status"] == "duplicate"

        def all_done() -> bool:
            done = [runs(gh, pr.head_sha) for pr in prs]
            return all(rs and all(r.status == "completed" for r in rs) for rs in done) \
                and not bot.web_queue.state.open_checks() and bot.web_queue.huey.pending_count() == 0
        wait_for(all_done, 30, "every PR's check run to end")
        time.sleep(0.5)  # a job run twice would show up here as a second check run
    finally:
        for proc in workers:
            stop(proc, 2)  # SIGINT (every job is done by now)
    logs = [(tmp_path / f"worker-{i}" / "worker.log").read_text() for i in (1, 2)]
    assert all(proc.returncode == 0 for proc in workers), logs
    assert not any("Traceback" in log for log in logs), logs

    every = gh.state.checks_for(REPO, name="Labrador")
    assert len(every) == BURST  # one check run per PR head, none from a job run twice
    assert len({r.external_id for r in every}) == BURST  # ... each from its own job
    for i, pr in enumerate(prs):
        [run] = runs(gh, pr.head_sha)
        completions = [h for h in run.history if h["body"].get("status") == "completed" or h["body"].get("conclusion")]
        assert [h["method"] for h in run.history][0] == "POST" and len(completions) == 1, run.history
        if i % 2:
            assert run.conclusion == "failure"
            assert annotated(run) == {(NEW_PATH, line, "failure") for line in BROKEN_LINES}
            assert "Validation failed" in sticky(gh, pr.number).body
        else:
            assert (run.conclusion, run.annotations) == ("success", [])
            assert "Validation passed" in sticky(gh, pr.number).body
    state = bot.web_queue.state
    assert state.open_checks() == [] and state.r.hlen(f"{state.p}beats") == 0  # no heartbeat outlived its record
    executed = [len(EXECUTING.findall(log)) for log in logs]
    assert sum(executed) == BURST, executed  # every job ran once, in one of the two processes
    assert all(executed), executed  # and both processes took work



# -- 3: a worker stopped mid-job on one machine, finished on another ----------------------------------------------


def test_a_job_handed_back_at_sigterm_is_finished_by_another_machines_worker(
        gh: GitHubServer, redis_bot: Bot, redis_url: str, tmp_path: Path) -> None:
    bot = redis_bot
    pr = open_pr(gh, TWO_LEAVES)
    slow = gh.state.inject_fault(r"/org/taxonomy\.git/.*", status=None, delay=4.0)
    first = start_worker(gh, redis_url, tmp_path / "worker-1", threads=1, extra="shutdown_grace_s = 0.5\n")
    try:
        bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
        wait_for(lambda: slow.hits == 1, 30, "the first worker to be mid-fetch")
        slow_until = time.monotonic() + 4.0
        first.send_signal(15)  # SIGTERM
        first.wait(20)
    finally:
        stop(first, 9)
    assert "queued again" in (tmp_path / "worker-1" / "worker.log").read_text()
    [run] = runs(gh, pr.head_sha)
    assert run.status == "in_progress"
    second = start_worker(gh, redis_url, tmp_path / "worker-2", threads=1)
    try:
        wait_for(lambda: runs(gh, pr.head_sha)[0].status == "completed", 30, "the other worker to finish it")
        wait_for(lambda: bot.web_queue.state.open_checks() == [], 30, "its lease released (a stop before that "
                 "hands the job back)")
    finally:
        stop(second, 2)
    [run] = runs(gh, pr.head_sha)  # the same check run, taken over through the lease in Redis
    assert run.conclusion == "failure" and annotated(run) == {(NEW_PATH, n, "failure") for n in BROKEN_LINES}
    assert bot.web_queue.state.open_checks() == []
    time.sleep(max(0.0, slow_until - time.monotonic()))
