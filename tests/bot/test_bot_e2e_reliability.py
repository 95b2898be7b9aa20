"""The bot under the failures that lose, repeat or strand work: missed and reordered pushes, lost answers,
retries, signals, deadlines, rate limits, slow clients. Real webhook app, queue, worker and GitHub test server.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botkit import EchoPreviewer
from e2ekit import (
    ATTRIBUTION,
    BROKEN_LINES,
    FIXED,
    NEW_DIR,
    NEW_PATH,
    REPO,
    TWO_LEAVES,
    Bot,
    annotated,
    comment,
    open_pr,
    runs,
    start_worker,
    sticky,
    stop,
    wait_for,
)
from ghserver import GitHubServer

from labrador.bot.merges import read_merges
from labrador.trainer.teachers.config import TeacherSettings
from labrador.validators import Config


def at_second(ts: float) -> float:
    """``ts`` floored to a whole second (GitHub's timestamps), as an epoch float."""
    return float(int(ts))


def set_time(gh: GitHubServer, thing: Any, ts: float) -> None:
    with gh.state.lock:
        thing.updated_at = ts
        if hasattr(thing, "created_at"):
            thing.created_at = ts


def retry_comment(gh: GitHubServer, number: int, when: float, user: str = "alice") -> Any:
    said = comment(gh, number, "/lab retry", user)
    with gh.state.lock:
        said.created_at = said.updated_at = when
    return said


# -- head tracking ----------------------------------------------------------------------------------------------


def test_a_missed_push_is_found_at_job_time_and_later_commands_bind_to_it(gh: GitHubServer, bot: Bot) -> None:
    """The ``synchronize`` for B never arrived: the bot learns B from GitHub when a command runs, validates it,
    and a command written after that binds to B (it used to answer "your command was for A" forever)."""
    pr = open_pr(gh, TWO_LEAVES, user="alice")
    first = pr.head_sha
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1
    gh.state.push_to_pr(REPO, pr.number, {NEW_PATH: FIXED})  # no delivery: GitHub lost it
    second = gh.state.pull(REPO, pr.number).head_sha

    bot.deliver("issue_comment", gh.issue_comment_event(retry_comment(gh, pr.number, at_second(time.time()))))
    assert bot.work() == 2  # the retry, and the validation of the head it discovered
    [found] = runs(gh, second)
    assert (found.status, found.conclusion) == ("completed", "success")
    body = sticky(gh, pr.number).body
    assert "your command was for" not in body  # no wrong claim about which commit it was for

    later = at_second(time.time()) + 2  # written after the bot saw B
    bot.deliver("issue_comment", gh.issue_comment_event(retry_comment(gh, pr.number, later)))
    assert bot.work() == 1
    assert [r.conclusion for r in runs(gh, second)] == ["success", "success"]  # the retry ran on B
    assert len(runs(gh, first)) == 1


def test_after_a_force_push_back_a_command_binds_to_the_current_head(gh: GitHubServer, bot: Bot) -> None:
    """A → B → A: every command used to bind to B (A's first sighting was the oldest)."""
    now = at_second(time.time())
    pr = open_pr(gh, TWO_LEAVES, user="alice")
    a = pr.head_sha
    set_time(gh, pr, now - 60)
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1
    gh.state.push_to_pr(REPO, pr.number, {NEW_PATH: FIXED})
    b = gh.state.pull(REPO, pr.number).head_sha
    set_time(gh, pr, now - 40)
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "synchronize"))
    assert bot.work() == 1
    gh.state.force_push_pr(REPO, pr.number, a)
    set_time(gh, pr, now - 20)
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "synchronize"))
    assert bot.work() == 1

    bot.deliver("issue_comment", gh.issue_comment_event(retry_comment(gh, pr.number, now - 10)))
    assert bot.work() == 1
    assert "your command was for" not in sticky(gh, pr.number).body
    assert [r.conclusion for r in runs(gh, a)] == ["failure", "failure", "failure"]  # opened, push back, retry
    assert len(runs(gh, b)) == 1


def test_a_push_in_the_same_second_as_the_comment_is_said_to_be_ambiguous(gh: GitHubServer, bot: Bot) -> None:
    now = at_second(time.time())
    pr = open_pr(gh, TWO_LEAVES, user="alice")
    set_time(gh, pr, now - 60)
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    gh.state.push_to_pr(REPO, pr.number, {NEW_PATH: FIXED})
    b = gh.state.pull(REPO, pr.number).head_sha
    set_time(gh, pr, now - 5)
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "synchronize"))
    assert bot.work() == 2

    bot.deliver("issue_comment", gh.issue_comment_event(retry_comment(gh, pr.number, now - 5)))  # same second
    assert bot.work() == 1
    body = sticky(gh, pr.number).body
    assert "I cannot tell whether your command was written for" in body and "did not guess" in body
    assert len(runs(gh, b)) == 1  # nothing ran on a guess


# -- check runs: a lost answer, a retry, the sweep ----------------------------------------------------------------


def test_a_check_run_whose_creation_answer_was_lost_is_found_again(gh: GitHubServer, bot: Bot) -> None:
    """GitHub created the run but the bot saw a 500: the retry finds it by external_id (it used to open a second
    one and leave the first in progress forever)."""
    pr = open_pr(gh, TWO_LEAVES)
    gh.state.inject_fault(rf"/repos/{REPO}/check-runs", method="POST", status=None,
                          mutate=lambda body: {"id": "not a number"})
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 2  # the job, then its retry
    gh.state.errors.clear()  # the spec violation we provoked on purpose
    [run] = runs(gh, pr.head_sha)
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert annotated(run) == {(NEW_PATH, line, "failure") for line in BROKEN_LINES}
    assert bot.worker.state.open_checks() == []
    # looked up once, by the retry: a first attempt has nothing to find and does not ask
    assert len(gh.state.calls("GET /repos/{owner}/{repo}/commits/{ref}/check-runs")) == 1


def test_the_sweep_spares_a_job_waiting_for_its_retry(gh: GitHubServer, make_bot: Callable[..., Bot]) -> None:
    """One push used to give three executions and three check runs when the retry delay was long."""
    bot = make_bot(retry_delay_s=70.0, retries=1)
    pr = open_pr(gh, TWO_LEAVES)
    gh.state.inject_fault(r"/org/taxonomy\.git/.*", status=500)  # the first fetch fails
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1
    [run] = runs(gh, pr.head_sha)
    assert run.status == "in_progress"
    assert bot.runner.sweep() == [] and bot.runner.sweep(time.time() + 30) == []
    assert runs(gh, pr.head_sha)[0].status == "in_progress"

    huey = bot.worker.huey
    due = huey.read_schedule(dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=120))
    assert len(due) == 1
    due[0].eta = None  # due now (instead of in 70 s)
    huey.execute(due[0])
    [run] = runs(gh, pr.head_sha)
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert bot.worker.state.open_checks() == []


# -- SIGTERM -----------------------------------------------------------------------------------------------------


SLOW_S = 4.0


def sigterm_mid_job(gh: GitHubServer, bot: Bot, tmp_path: Path, slow_path: str, event: dict[str, Any],
                    worker_type: str = "thread") -> float:
    """Start a worker, deliver ``event``, SIGTERM the worker while GitHub answers ``slow_path`` slowly; returns
    when that slow answer will have been sent (the test waits for it before the server stops)."""
    slow = gh.state.inject_fault(slow_path, status=None, delay=SLOW_S)
    first = start_worker(gh, bot, tmp_path / "w1.log", extra="shutdown_grace_s = 0.5\n", worker_type=worker_type)
    try:
        bot.deliver("pull_request", event)
        wait_for(lambda: slow.hits == 1, what="the worker to be mid-job")
        slow_until = time.monotonic() + SLOW_S
        first.send_signal(signal.SIGTERM)
        first.wait(20)  # within the grace period, not killed
    finally:
        stop(first, signal.SIGKILL)
    log = (tmp_path / "w1.log").read_text()
    assert "queued again" in log and "Traceback" not in log
    return slow_until


def test_sigterm_hands_a_running_job_back_and_the_next_worker_finishes_it(gh: GitHubServer, bot: Bot,
                                                                          tmp_path: Path) -> None:
    """A merge record (no check run) was lost when systemd stopped the worker mid-job."""
    pr = open_pr(gh, TWO_LEAVES)
    merged = gh.state.close_pr(REPO, pr.number, merge=True)
    slow_until = sigterm_mid_job(gh, bot, tmp_path, rf"/repos/{REPO}/pulls/{pr.number}/files",
                                 gh.pull_request_event(REPO, pr.number, "closed"))
    assert read_merges(bot.settings.merges_path) == []
    second = start_worker(gh, bot, tmp_path / "w2.log")
    try:
        wait_for(lambda: read_merges(bot.settings.merges_path), timeout=30, what="the merge to be recorded")
    finally:
        stop(second, signal.SIGINT)
    [record] = read_merges(bot.settings.merges_path)
    assert record["merge_sha"] == merged.merge_commit_sha
    assert bot.web_queue.state.open_checks() == []
    time.sleep(max(0.0, slow_until - time.monotonic()))  # let the server answer the stopped worker's request


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_sigterm_mid_validation_reuses_the_check_run(gh: GitHubServer, bot: Bot, tmp_path: Path,
                                                     worker_type: str) -> None:
    pr = open_pr(gh, TWO_LEAVES)
    slow_until = sigterm_mid_job(gh, bot, tmp_path, r"/org/taxonomy\.git/.*",
                                 gh.pull_request_event(REPO, pr.number, "opened"), worker_type)
    [run] = runs(gh, pr.head_sha)
    assert run.status == "in_progress"
    second = start_worker(gh, bot, tmp_path / "w2.log")
    try:
        wait_for(lambda: runs(gh, pr.head_sha)[0].status == "completed", timeout=30, what="the run to end")
    finally:
        stop(second, signal.SIGINT)
    [run] = runs(gh, pr.head_sha)  # one run: the second worker took the lease over, not a "Worker lost" + a new one
    assert run.conclusion == "failure" and annotated(run) == {(NEW_PATH, n, "failure") for n in BROKEN_LINES}
    time.sleep(max(0.0, slow_until - time.monotonic()))


def test_a_job_lost_between_the_queue_and_a_worker_is_queued_again(gh: GitHubServer, bot: Bot) -> None:
    """A worker that dies right after taking a job off the queue (before writing anything) loses nothing: the
    job's lease was written when it was accepted."""
    pr = open_pr(gh, TWO_LEAVES)
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.worker.huey.dequeue() is not None  # taken, then the worker is gone
    assert bot.worker.huey.pending_count() == 0
    assert bot.runner.sweep() == []  # a fresh queued lease is left alone
    [lost] = bot.runner.sweep(time.time() + bot.settings.stale_after_s + 1)
    assert lost.queued and lost.check_id == 0
    assert bot.work() == 1
    [run] = runs(gh, pr.head_sha)
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert bot.worker.state.open_checks() == []


# -- the deadline stops the work ----------------------------------------------------------------------------------


DOC = b"# Printing\n\nMovable type came to Europe in the fifteenth century.\n" * 20


def test_the_deadline_stops_document_fetches(gh: GitHubServer, make_bot: Callable[..., Bot], tmp_path: Path) -> None:
    """Three knowledge leaves on a slow document host: once the job times out, no new fetch starts (the
    abandoned thread used to go on fetching for tens of seconds)."""
    root = Path(__file__).resolve().parents[2]
    base = "taxonomy/knowledge/history/printing_press"
    qna = (root / base / "qna.yaml").read_bytes().partition(b"document:\n")[0]
    files: dict[str, bytes] = {}
    for i in range(3):
        docs = gh.state.create_repo(f"org/docs{i}", {"printing.md": DOC})
        assert docs.git is not None
        block = (f'document:\n  repo: {gh.git_url(f"org/docs{i}")}\n  commit: "{docs.git.tip("refs/heads/main")}"\n'
                 "  patterns:\n    - printing.md\n").encode()
        files[f"{base}_{i}/qna.yaml"] = qna + block
        files[f"{base}_{i}/attribution.txt"] = (root / base / "attribution.txt").read_bytes()
    checker = Config(cache_dir=str(tmp_path / "doc-cache"), allowed_hosts=("http://127.0.0.1",),
                     allow_private_hosts=True)
    bot = make_bot(job_deadline_s=3.0, retries=0, checker=checker)
    pr = open_pr(gh, files)
    slow = gh.state.inject_fault(r"/org/docs\d\.git/.*", status=None, delay=2.0, times=50)
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1
    [run] = runs(gh, pr.head_sha)
    assert (run.status, run.conclusion) == ("completed", "timed_out")
    hits = slow.hits
    time.sleep(10.0)
    assert slow.hits - hits <= 1, f"{slow.hits - hits} document requests after the job timed out"


# -- rate limits and the preview limit -----------------------------------------------------------------------


def test_a_rate_limited_answer_is_waited_out(gh: GitHubServer, make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(retries=0)
    pr = open_pr(gh, TWO_LEAVES)
    reset = int(time.time()) + 2
    limited = gh.state.inject_fault(rf"/repos/{REPO}/pulls/{pr.number}", method="GET", status=403,
                                    body={"message": "API rate limit exceeded for installation ID 1.",
                                          "documentation_url": "https://docs.github.com/rest/rate-limit"},
                                    headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset),
                                             "X-RateLimit-Limit": "5000"})
    secondary = gh.state.inject_fault(rf"/repos/{REPO}/check-runs", method="POST", status=429,
                                      headers={"Retry-After": "1"},
                                      body={"message": "You have exceeded a secondary rate limit."})
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1
    assert limited.hits == 1 and secondary.hits == 1
    [run] = runs(gh, pr.head_sha)
    assert (run.status, run.conclusion) == ("completed", "failure")
    gets = [r for r in gh.state.calls("GET /repos/{owner}/{repo}/pulls/{pull_number}")]
    assert gets[0].status == 403 and gets[1].status == 200 and gets[1].at >= reset - 0.05
    posts = gh.state.calls("POST /repos/{owner}/{repo}/check-runs")
    assert [p.status for p in posts] == [429, 201] and posts[1].at - posts[0].at >= 0.95


def test_previews_are_limited_per_pull_request(gh: GitHubServer, make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(preview_limit=1, teacher=TeacherSettings(spec="echo"))
    bot.previewer = EchoPreviewer()
    pr = open_pr(gh, {NEW_PATH: FIXED, f"{NEW_DIR}/attribution.txt": ATTRIBUTION})
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1
    bot.deliver("issue_comment", gh.issue_comment_event(comment(gh, pr.number, "/lab preview", "maintainer", 1)))
    assert bot.work() == 1
    assert len(runs(gh, pr.head_sha, "Labrador preview")) == 1
    bot.deliver("issue_comment", gh.issue_comment_event(comment(gh, pr.number, "/lab preview", "maintainer")))
    assert bot.work() == 1
    assert len(runs(gh, pr.head_sha, "Labrador preview")) == 1
    assert "already had 1 previews in the last 60 minutes" in sticky(gh, pr.number).body


# -- a fork's "Re-run" ----------------------------------------------------------------------------------------------


def test_re_run_on_a_forks_check_validates_again(gh: GitHubServer, bot: Bot) -> None:
    pr = open_pr(gh, TWO_LEAVES)  # from a fork, the usual community case
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1
    [run] = runs(gh, pr.head_sha)
    event = gh.check_run_event(run)
    assert event["check_run"]["pull_requests"] == []  # what GitHub sends for a fork's head
    reply = bot.deliver("check_run", event)
    assert reply.status_code == 202
    assert bot.work() == 1
    assert [r.conclusion for r in runs(gh, pr.head_sha)] == ["failure", "failure"]


# -- slow and vanishing clients -----------------------------------------------------------------------------------


def _connect(url: str) -> socket.socket:
    host, port = url.split("//")[1].split("/")[0].split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_slow_clients_are_cut_off_and_a_vanishing_one_is_one_log_line(make_bot: Callable[..., Bot],
                                                                     caplog: Any) -> None:
    bot = make_bot("slow", read_timeout_s=1.0)
    caplog.set_level(logging.INFO, logger="labrador.bot.webhook")
    heads = [_connect(bot.url) for _ in range(10)]
    for s in heads:  # a request head that never ends
        s.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: ping\r\n")
    body = _connect(bot.url)  # a head, then a body that stops halfway
    body.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"{" * 10)
    started = time.monotonic()
    for s in heads:
        assert s.recv(100) == b""  # closed by the server
    answer = body.recv(1000)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert time.monotonic() - started < 5.0

    gone = _connect(bot.url)  # a client that goes away mid-body
    gone.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"{" * 10)
    gone.close()
    wait_for(lambda: any("disconnected before sending" in r.getMessage() for r in caplog.records), 10,
             "the disconnect to be logged")
    for s in [*heads, body]:
        s.close()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("no complete request within 1 s" in m for m in messages) == 10
    assert sum("took more than 1 s to send its body" in m for m in messages) == 1
    assert not any(r.exc_info for r in caplog.records) and not any("Traceback" in m for m in messages)


# -- pruning -----------------------------------------------------------------------------------------------------


def test_git_caches_and_expired_delivery_ids_are_pruned(gh: GitHubServer, make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(delivery_ttl_s=1.0, git_cache_max_bytes=1)
    pr = open_pr(gh, TWO_LEAVES)
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1
    [gitdir] = (bot.settings.work_path / "git").glob("*.git")
    lock = gitdir.with_name(gitdir.name + ".lock")
    db = sqlite3.connect(bot.settings.resolved_queue_url.removeprefix("sqlite:///"))

    def claims(kind: str) -> int:
        return db.execute("select count(*) from labrador_claim where kind = ?", (kind,)).fetchone()[0]

    assert claims("delivery") == claims("body") == 1
    assert bot.runner.maintain(force=True)["repositories"] == 0  # over the size, but used a moment ago
    assert gitdir.is_dir()
    time.sleep(1.1)  # the delivery id expires
    hour_ago = time.time() - 2 * 3600
    os.utime(lock, (hour_ago, hour_ago))
    done = bot.runner.maintain(force=True)
    assert done == {"records": done["records"], "repositories": 1} and done["records"] >= 2
    assert not gitdir.exists() and claims("delivery") == claims("body") == 0

    gh.state.push_to_pr(REPO, pr.number, {NEW_PATH: FIXED})  # the bot fetches afresh
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "synchronize"))
    assert bot.work() == 1
    assert runs(gh, gh.state.pull(REPO, pr.number).head_sha)[0].conclusion == "success"
    db.close()


def test_a_result_github_refuses_is_written_by_the_sweep_when_writes_come_back(
        gh: GitHubServer, make_bot: Callable[..., Bot], caplog: pytest.LogCaptureFixture) -> None:
    """GitHub refuses every write of the check run (a secondary rate limit, 403): the job could not end its run,
    which stayed ``in_progress``, and the sweep waited a minute per run on the only worker thread. Now the
    job's ending is kept, the sweep never waits, and it writes that ending once GitHub accepts writes."""
    bot = make_bot(retries=0, job_deadline_s=3.0)
    pr = open_pr(gh, TWO_LEAVES)
    refused = gh.state.inject_fault(rf"/repos/{REPO}/check-runs/\d+", method="PATCH", status=403, times=10_000,
                                    body={"message": "You have exceeded a secondary rate limit."})
    caplog.set_level(logging.WARNING, logger="labrador.bot")
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1
    [run] = runs(gh, pr.head_sha)
    assert run.status == "in_progress" and refused.hits >= 1
    [lease] = bot.worker.state.open_checks()
    assert lease.unwritten and lease.result["conclusion"] == "failure"
    assert "every sweep tries again" in caplog.text
    started = time.monotonic()
    assert bot.runner.sweep() == []  # still refused: kept, and no minute-long wait
    assert time.monotonic() - started < 5.0
    assert [r.job_id for r in bot.worker.state.open_checks()] == [lease.job_id]
    with gh.state.lock:
        refused.times = 0  # GitHub accepts writes again
    assert [r.job_id for r in bot.runner.sweep()] == [lease.job_id]
    [run] = runs(gh, pr.head_sha)
    assert (run.status, run.conclusion, run.title) == ("completed", "failure", "Internal error")
    assert bot.worker.state.open_checks() == [] and len(bot.worker.pending()) == 0


@pytest.mark.parametrize("garbage", ["yesterday", "2024-13-45T99:00:00Z", ""])
def test_a_command_whose_time_cannot_be_read_is_answered(gh: GitHubServer, bot: Bot, garbage: str) -> None:
    """A garbage ``comment.created_at`` was accepted (202) and the command then dropped without a word."""
    pr = open_pr(gh, TWO_LEAVES, user="alice")
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1
    event = gh.issue_comment_event(comment(gh, pr.number, "/lab retry", "alice"))
    event["comment"]["created_at"] = garbage
    assert bot.deliver("issue_comment", event).status_code == 202
    bot.work()
    assert "I could not read when this comment was made" in sticky(gh, pr.number).body
    assert len(runs(gh, pr.head_sha)) == 1  # nothing ran on a guessed head
