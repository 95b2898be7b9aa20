"""The durable queue: coalescing and replay protection on SQLite and on a real redis-server (loopback)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botkit import settings_for
from loopback import redis_server

from labrador.bot.jobs import PREVIEW, VALIDATE, Job
from labrador.bot.queue import JobQueue, open_storage, sqlite_path

SHA = "a" * 40


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throw-away redis-server on a free loopback port for this module."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(params=["sqlite", "redis"])
def make_queue(request: pytest.FixtureRequest, tmp_path: Path):
    """Queues on one storage; calling it twice gives two processes' views of the same queue."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        name = f"t{time.monotonic_ns()}"  # a fresh namespace per test in the shared server
    else:
        url, name = f"sqlite:///{tmp_path / 'queue.db'}", "labrador"

    def make(**overrides) -> JobQueue:
        return JobQueue(settings_for(tmp_path, queue_url=url, **overrides), name=name)

    return make


def test_same_key_twice_is_one_job(make_queue) -> None:
    q = make_queue()
    assert q.submit(Job(VALIDATE, "acme/t", 1, SHA)) is True
    assert q.submit(Job(VALIDATE, "acme/t", 1, SHA, delivery="redelivered")) is False
    assert make_queue().submit(Job(VALIDATE, "acme/t", 1, SHA)) is False  # another web process, same storage
    assert q.submit(Job(PREVIEW, "acme/t", 1, SHA)) is True  # another kind is other work
    assert q.submit(Job(VALIDATE, "acme/t", 1, "b" * 40)) is True  # another head too
    assert [j.kind for j in q.pending()] == [VALIDATE, PREVIEW, VALIDATE]


def test_a_started_job_no_longer_swallows_new_requests(make_queue) -> None:
    q = make_queue()
    ran: list[str] = []
    q.runner = lambda job, retries: ran.append(job.key)
    q.submit(Job(PREVIEW, "acme/t", 1, SHA, requester="maria"))
    assert q.run_pending() == 1 and len(ran) == 1
    assert q.submit(Job(PREVIEW, "acme/t", 1, SHA, requester="maria")) is True


def test_delivery_claims_are_atomic_and_expire(make_queue) -> None:
    state = make_queue().state
    assert state.claim("delivery", "abc", 60) is True
    assert make_queue().state.claim("delivery", "abc", 60) is False
    assert state.claim("delivery", "short", 0.05) is True
    time.sleep(0.12)
    assert state.claim("delivery", "short", 60) is True


def test_heads_are_looked_up_by_time(make_queue) -> None:
    state = make_queue().state
    state.record_head("acme/t", 1, "a" * 40, 100.0)
    state.record_head("acme/t", 1, "b" * 40, 200.0)
    state.record_head("acme/t", 1, "a" * 40, 300.0)  # force-pushed back: a sighting of its own
    state.record_head("acme/t", 1, "a" * 40, 300.0)  # the same sighting again adds nothing (SQLite) or is harmless
    assert state.head_at("acme/t", 1, 150.0) == "a" * 40
    assert state.head_at("acme/t", 1, 250.0) == "b" * 40
    assert state.head_at("acme/t", 1, 350.0) == "a" * 40
    assert state.head_at("acme/t", 1, 300.0) == ""  # pushed in the comment's second: not guessed
    assert state.head_at("acme/t", 1, 50.0) == ""
    assert state.head_at("acme/t", 2, 250.0) == ""
    state.record_head("acme/t", 1, "c" * 40, 500.0, exact=False)  # seen at job time, pushed at some point before
    assert state.head_at("acme/t", 1, 400.0) == "" and state.head_at("acme/t", 1, 501.0) == "c" * 40
    assert [s.exact for s in state.heads("acme/t", 1)][-1] is False


def test_retries_are_run_by_huey(make_queue) -> None:
    q = make_queue(retries=1, retry_delay_s=0.0)
    attempts: list[int] = []

    def flaky(job: Job, retries_left: int) -> None:
        attempts.append(retries_left)
        if len(attempts) == 1:
            raise ConnectionError("GitHub said 502")

    q.runner = flaky
    q.submit(Job(VALIDATE, "acme/t", 1, SHA))
    q.run_pending()
    deadline = time.monotonic() + 5
    while len(attempts) < 2 and time.monotonic() < deadline:  # the retry goes through the schedule
        for task in q.huey.read_schedule():
            q.huey.execute(task)
        time.sleep(0.01)
    assert attempts == [1, 0]


def test_queue_urls(tmp_path: Path) -> None:
    assert sqlite_path("sqlite:///rel/q.db") == Path("rel/q.db")
    assert sqlite_path("sqlite:////abs/q.db") == Path("/abs/q.db")
    with pytest.raises(ValueError, match="sqlite:///PATH or redis"):
        open_storage("postgres://user:pw@host/db")
    with pytest.raises(ValueError) as err:
        open_storage("ftp://user:hunter2@host/db")
    assert "hunter2" not in str(err.value)
