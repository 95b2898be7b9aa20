"""Bounded fetches into a bare cache repository, one process at a time: the pieces the document checker
(``labrador.validators.documents``) and the bot (``labrador.bot.gitcache``, ``labrador.bot.merges``) share.

Imports pygit2, so import this module only where pygit2 is loaded anyway (``labrador.validators.cli`` reaches it
only through ``labrador.validators.documents``, and only when a document is checked).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from .locks import file_lock

__all__ = ["BoundedFetch", "FetchBudget", "FetchCancelled", "bare_repository", "bound_network_waits"]

_TIMEOUTS_MS = (("server_connect_timeout", 30_000), ("server_timeout", 120_000))


RECENT_S = 3600.0  # a repository used within this is never pruned for size


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def prune_cache(cache_dir: Path, max_bytes: int, max_age_s: float, now: float | None = None) -> list[str]:
    """Delete cached bare repositories (``*.git`` beside their ``.lock``) unused for ``max_age_s``, then the
    least recently used until the rest fit in ``max_bytes``; one in use is skipped. Returns the names removed.

    A repository goes by rename then delete, so a fetch starting meanwhile makes a fresh one; leftovers of a
    crash (half-made or half-deleted folders) older than an hour go too."""
    now = time.time() if now is None else now
    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        return []
    for junk in [*cache_dir.glob("*.git.tmp*"), *cache_dir.glob("*.git.gone-*")]:
        with contextlib.suppress(OSError):
            if now - junk.stat().st_mtime > 3600:
                shutil.rmtree(junk, ignore_errors=True)
    entries = []
    for gitdir in cache_dir.glob("*.git"):
        if not gitdir.is_dir():
            continue
        lock = gitdir.with_name(gitdir.name + ".lock")
        with contextlib.suppress(OSError):
            used = (lock if lock.exists() else gitdir).stat().st_mtime
            entries.append((used, _tree_bytes(gitdir), gitdir, lock))
    entries.sort(key=lambda e: e[0])  # least recently used first
    total = sum(size for _, size, _, _ in entries)
    removed: list[str] = []
    for used, size, gitdir, lock in entries:
        if now - used <= max_age_s and (total <= max_bytes or now - used < RECENT_S):
            break  # young enough, and within the size (or used too recently to pull from under a job)
        with file_lock(lock, wait=False) as free:
            if not free:
                continue  # a fetch or a check is using it
            gone = gitdir.with_name(f"{gitdir.name}.gone-{os.getpid()}")
            os.rename(gitdir, gone)
        shutil.rmtree(gone, ignore_errors=True)
        total -= size
        removed.append(gitdir.name)
    return removed


class FetchCancelled(Exception):
    """The caller's budget ran out or it was cancelled (a bot job past its deadline): not a verdict on the
    repository, so callers pass it on instead of reporting or remembering it."""


@dataclass
class FetchBudget:
    """Bounds over every fetch made in one context (a bot job): a wall-clock end, a byte cap per fetch, and
    a cancel switch that stops fetches in flight at their next progress report and refuses new ones."""

    seconds: float
    max_bytes: int
    fetch_seconds: float = float("inf")  # one fetch, at most
    cancelled: threading.Event = field(default_factory=threading.Event)
    end: float = 0.0

    def __post_init__(self) -> None:
        self.end = self.end or time.monotonic() + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def check(self) -> None:
        if self.cancelled.is_set() or self.remaining() <= 0:
            raise FetchCancelled("the job's time is up: the fetch was stopped")


_BUDGET: contextvars.ContextVar[FetchBudget | None] = contextvars.ContextVar("labrador_fetch_budget", default=None)


def current_budget() -> FetchBudget | None:
    """The budget of the work running in this thread or task (a bot job's), if any."""
    return _BUDGET.get()


@contextlib.contextmanager
def fetch_budget(budget: FetchBudget) -> Iterator[FetchBudget]:
    """Apply ``budget`` to every :class:`BoundedFetch` made inside the block (this thread or task)."""
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


class BoundedFetch(pygit2.RemoteCallbacks):
    """Fetch callbacks that abort once more than ``max_bytes`` arrived or ``seconds`` passed, raising
    ``error(message)`` (pygit2 re-raises it from ``Remote.fetch``). Inside :func:`fetch_budget` the tighter
    of the two bounds applies, and the budget's end or cancellation raises :class:`FetchCancelled`."""

    def __init__(self, max_bytes: int, seconds: float, error: Callable[[str], Exception] = RuntimeError) -> None:
        super().__init__()
        self.budget = current_budget()
        if self.budget is not None:
            self.budget.check()  # no new fetch once the job's time is up
            max_bytes = min(max_bytes, self.budget.max_bytes)
            seconds = min(seconds, self.budget.fetch_seconds)
        self.max_bytes, self.seconds, self.error = max_bytes, seconds, error
        self.deadline = time.monotonic() + seconds

    def transfer_progress(self, stats: pygit2.remotes.TransferProgress) -> None:
        if self.budget is not None:
            self.budget.check()
        if stats.received_bytes > self.max_bytes:
            raise self.error(f"the fetch is larger than {self.max_bytes >> 20:,} MiB")
        if time.monotonic() > self.deadline:
            raise self.error(f"the fetch took longer than {self.seconds:.0f} seconds")


def bare_repository(gitdir: Path) -> pygit2.Repository:
    """The bare repository at ``gitdir``, made first if missing: built beside it and renamed into place, so
    a crash never leaves a half-made repository."""
    if not gitdir.exists():
        tmp = Path(tempfile.mkdtemp(prefix=gitdir.name + ".tmp", dir=gitdir.parent))
        try:
            pygit2.init_repository(str(tmp), bare=True)
            os.rename(tmp, gitdir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return pygit2.Repository(str(gitdir))


def bound_network_waits() -> None:
    """Give libgit2 connect and read timeouts (it waits forever by default), keeping any the caller set."""
    for name, ms in _TIMEOUTS_MS:
        with contextlib.suppress(Exception):
            setattr(pygit2.settings, name, getattr(pygit2.settings, name) or ms)
