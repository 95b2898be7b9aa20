"""The bot's small durable state, kept in the queue's own storage (one SQLite file or one Redis).

Why here and not in memory: replays must stay rejected after a restart, coalescing must work across web
processes, and a check run opened by a worker that then died must still be found and ended by another one.
Records hold no secrets. Every "claim" is atomic, so several workers on several machines can share it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from .heads import Sighting, bind

QUEUED = "queued"  # the owner of a lease handed back to the queue
UNWRITTEN = "unwritten"  # the owner of a finished job's lease whose ending GitHub refused (the sweep retries it)
HEAD_TTL_S = 90 * 24 * 3600.0  # heads of a PR nobody touched for 90 days are forgotten
HEAD_LOG = 200  # sightings kept per PR (the newest)

@dataclass(frozen=True)
class CheckRecord:
    """A job's lease, from the moment a worker takes it until it is done: who runs it, until when, and its
    check run once it has one (``check_id`` 0 before). A sweeper ends the run of a lease whose owner is gone
    and queues the job again, so no job is lost between dequeue and completion."""

    job: dict[str, Any]
    repo: str
    check_id: int  # 0: no check run opened yet
    owner: str  # host:pid of the worker
    deadline: float  # epoch seconds
    heartbeat: float = 0.0
    attempts: int = 1  # starts of this job (huey retries and restarts keep its id); 0 while queued
    result: dict[str, str] | None = None  # the ending the job could not write (conclusion, title, summary)

    @property
    def job_id(self) -> str:
        return str(self.job["id"])

    @property
    def unwritten(self) -> bool:
        """The job finished but GitHub refused the check run's ending: the sweep writes ``result`` later."""
        return self.owner == UNWRITTEN

    @property
    def queued(self) -> bool:
        """Handed back to the queue by a worker that stopped (SIGTERM); whoever dequeues it takes it over."""
        return self.owner == QUEUED


class State(Protocol):
    def claim(self, kind: str, key: str, ttl: float) -> bool:
        """Set ``kind:key`` unless present and unexpired; True if this call set it (SETNX with a TTL)."""

    def release(self, kind: str, key: str) -> None: ...

    def record_head(self, repo: str, pr: int, sha: str, when: float, exact: bool = True) -> None:
        """Append a sighting of the PR's head (see :mod:`labrador.bot.heads`)."""

    def heads(self, repo: str, pr: int) -> list[Sighting]:
        """The PR's head sightings, oldest first (insertion order for equal times)."""

    def head_at(self, repo: str, pr: int, when: float) -> str:
        """The head a comment written at ``when`` binds to; "" if unknown or ambiguous."""

    def open_check(self, record: CheckRecord) -> None: ...

    def get_check(self, job_id: str) -> CheckRecord | None: ...

    def beat(self, job_id: str, now: float) -> None: ...

    def close_check(self, job_id: str) -> bool:
        """Forget the record; True only for the one caller that removed it (so only one ends the run)."""

    def open_checks(self) -> list[CheckRecord]: ...

    def prune(self, now: float) -> int:
        """Drop expired claims and old head sightings; returns how many records went."""


_DDL = (
    "create table if not exists labrador_claim (kind text not null, key text not null, expires real not null, "
    "primary key (kind, key))",
    "create table if not exists labrador_heads (id integer primary key autoincrement, repo text not null, "
    "pr integer not null, sha text not null, seen real not null, exact integer not null)",
    "create index if not exists labrador_heads_pr on labrador_heads (repo, pr)",
    "create table if not exists labrador_check (job_id text primary key, data text not null, "
    "heartbeat real not null)",
)


class _HeadLookup:
    """``head_at`` from ``heads``, the same for every storage (the webhook binds commands with it)."""

    def heads(self, repo: str, pr: int) -> list[Sighting]:
        raise NotImplementedError

    def head_at(self, repo: str, pr: int, when: float) -> str:
        return bind(self.heads(repo, pr), when).sha


_INHERITED: list[sqlite3.Connection] = []


class SqliteState(_HeadLookup):
    """State in the SqliteHuey database file; a connection per call keeps it safe across threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._db() as db:
            db.execute("pragma journal_mode=wal")  # kept by the file
            for ddl in _DDL:
                db.execute(ddl)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, in autocommit mode. Kept open (opening one per call cost about as much as
        the statement, on the webhook's hot path); a forked worker process opens its own."""
        db, pid = getattr(self._local, "db", None), os.getpid()
        if db is None or self._local.pid != pid:
            if db is not None:  # inherited through fork(): never use it, and never close it (SQLite's advice)
                _INHERITED.append(db)
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            self._local.db, self._local.pid = db, pid
        yield db

    def claim(self, kind: str, key: str, ttl: float) -> bool:
        now = time.time()
        with self._db() as db:
            cur = db.execute("insert into labrador_claim (kind, key, expires) values (?, ?, ?) "
                             "on conflict (kind, key) do update set expires = excluded.expires "
                             "where labrador_claim.expires < ?", (kind, key, now + ttl, now))
            if cur.rowcount and now % 64 < 1:  # now and then, drop long-expired claims
                db.execute("delete from labrador_claim where expires < ?", (now - 60,))
            return cur.rowcount == 1

    def release(self, kind: str, key: str) -> None:
        with self._db() as db:
            db.execute("delete from labrador_claim where kind = ? and key = ?", (kind, key))

    def record_head(self, repo: str, pr: int, sha: str, when: float, exact: bool = True) -> None:
        with self._db() as db:
            cur = db.execute("insert into labrador_heads (repo, pr, sha, seen, exact) select ?, ?, ?, ?, ? where "
                             "not exists (select 1 from labrador_heads where repo = ? and pr = ? and sha = ? and "
                             "seen = ? and exact = ?)", (repo, pr, sha, when, int(exact), repo, pr, sha, when,
                                                         int(exact)))
            if cur.lastrowid and cur.lastrowid % 32 == 0:  # now and then, keep the newest HEAD_LOG of this PR
                db.execute("delete from labrador_heads where repo = ? and pr = ? and id not in (select id from "
                           "labrador_heads where repo = ? and pr = ? order by id desc limit ?)",
                           (repo, pr, repo, pr, HEAD_LOG))

    def heads(self, repo: str, pr: int) -> list[Sighting]:
        with self._db() as db:
            rows = db.execute("select sha, seen, exact from labrador_heads where repo = ? and pr = ? order by id",
                              (repo, pr)).fetchall()
        return [Sighting(sha, seen, bool(exact)) for sha, seen, exact in rows]


    def open_check(self, record: CheckRecord) -> None:
        data = json.dumps(asdict(record))
        with self._db() as db:
            db.execute("insert or replace into labrador_check (job_id, data, heartbeat) values (?, ?, ?)",
                       (record.job_id, data, record.heartbeat or time.time()))

    def get_check(self, job_id: str) -> CheckRecord | None:
        with self._db() as db:
            row = db.execute("select data, heartbeat from labrador_check where job_id = ?", (job_id,)).fetchone()
        return _record(row[0], row[1]) if row else None

    def beat(self, job_id: str, now: float) -> None:
        with self._db() as db:
            db.execute("update labrador_check set heartbeat = ? where job_id = ?", (now, job_id))

    def close_check(self, job_id: str) -> bool:
        with self._db() as db:
            return db.execute("delete from labrador_check where job_id = ?", (job_id,)).rowcount == 1

    def open_checks(self) -> list[CheckRecord]:
        with self._db() as db:
            rows = db.execute("select data, heartbeat from labrador_check").fetchall()
        return [_record(data, beat) for data, beat in rows]

    def prune(self, now: float) -> int:
        with self._db() as db:
            gone = db.execute("delete from labrador_claim where expires < ?", (now,)).rowcount
            # a PR's log goes whole, once its newest sighting is old (so an old PR never loses its last head)
            gone += db.execute("delete from labrador_heads where (repo, pr) in (select repo, pr from labrador_heads "
                               "group by repo, pr having max(seen) < ?)", (now - HEAD_TTL_S,)).rowcount
        return gone


def _record(data: str, heartbeat: float) -> CheckRecord:
    fields = json.loads(data)
    fields["heartbeat"] = heartbeat
    return CheckRecord(**fields)


_APPEND_HEAD = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
"""
_BEAT_IF_OPEN = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
"""


class RedisState(_HeadLookup):
    """State in Redis, beside RedisHuey's keys: SET NX EX for claims, hashes for heads and check runs."""

    def __init__(self, client: Any, prefix: str = "labrador:") -> None:
        self.r = client
        self.p = prefix

    def claim(self, kind: str, key: str, ttl: float) -> bool:
        return bool(self.r.set(f"{self.p}{kind}:{key}", b"1", nx=True, px=max(1, int(ttl * 1000))))

    def release(self, kind: str, key: str) -> None:
        self.r.delete(f"{self.p}{kind}:{key}")

    def record_head(self, repo: str, pr: int, sha: str, when: float, exact: bool = True) -> None:
        # one script: append, keep the newest HEAD_LOG, renew the TTL (the log of an idle PR expires whole)
        entry = json.dumps([sha, when, bool(exact)])
        self.r.eval(_APPEND_HEAD, 1, f"{self.p}heads:{repo}#{pr}", entry, HEAD_LOG, int(HEAD_TTL_S))

    def heads(self, repo: str, pr: int) -> list[Sighting]:
        out = []
        for raw in self.r.lrange(f"{self.p}heads:{repo}#{pr}", 0, -1):
            sha, seen, exact = json.loads(raw)
            out.append(Sighting(str(sha), float(seen), bool(exact)))
        return out


    def open_check(self, record: CheckRecord) -> None:
        pipe = self.r.pipeline()
        pipe.hset(f"{self.p}checks", record.job_id, json.dumps(asdict(record)))
        pipe.hset(f"{self.p}beats", record.job_id, repr(record.heartbeat or time.time()))
        pipe.execute()

    def get_check(self, job_id: str) -> CheckRecord | None:
        data = self.r.hget(f"{self.p}checks", job_id)
        beat = self.r.hget(f"{self.p}beats", job_id)
        return _record(data.decode(), float(beat or 0)) if data else None

    def beat(self, job_id: str, now: float) -> None:
        # atomic: a beat racing close_check must not leave a heartbeat behind for a record that is gone
        self.r.eval(_BEAT_IF_OPEN, 2, f"{self.p}checks", f"{self.p}beats", job_id, repr(now))

    def close_check(self, job_id: str) -> bool:
        removed = self.r.hdel(f"{self.p}checks", job_id)
        self.r.hdel(f"{self.p}beats", job_id)
        return removed == 1

    def open_checks(self) -> list[CheckRecord]:
        beats = self.r.hgetall(f"{self.p}beats")
        return [_record(data.decode(), float(beats.get(job_id, 0) or 0))
                for job_id, data in self.r.hgetall(f"{self.p}checks").items()]

    def prune(self, now: float) -> int:
        return 0  # every claim and head log carries a Redis TTL: Redis drops them itself
