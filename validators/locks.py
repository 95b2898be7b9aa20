"""The project's one lock, and how to tell that a lock's (or a job's) owner is gone.

``file_lock`` is an exclusive ``flock`` on a lock file: the kernel releases it when its process dies, so a crash
never leaves a lock behind and two processes can never both take over a stale one. ``PidLock`` adds the
holder's pid to the file for the message a second run prints: the nightly job locks its state folder,
``labrador train`` its ``output_dir`` (two runs writing the same files would interleave metrics and race for
the weights); the document cache and the bot's git cache lock each repository they fetch into.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the atomic rename still protects creation
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on the file ``path`` (created, mode 0o600) for the ``with`` block; with
    ``wait=False`` yield False at once when another holds it. Taking it marks the file as used now."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
        os.utime(fd)  # the cache's "last used" time, read by prune_cache
        yield True
    finally:
        os.close(fd)  # closing releases the lock


class Busy(RuntimeError):
    """Another live process holds the lock; the message names it."""


class PidLock:
    """``with PidLock(path, "a nightly run"):`` — exclusive while the body runs; ``Busy`` when another process
    holds it. The file stays (removing a locked file would let a third process lock a new one)."""

    def __init__(self, path: Path, what: str = "another run") -> None:
        self.path = Path(path)
        self.what = what
        self._held: contextlib.ExitStack | None = None

    def __enter__(self) -> PidLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stack = contextlib.ExitStack()
        if not stack.enter_context(file_lock(self.path, wait=False)):
            stack.close()
            try:
                pid = self.path.read_text().strip() or "?"
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.path.stat().st_mtime))
            except OSError:
                pid, since = "?", "?"
            raise Busy(f"{self.what} (pid {pid}, since {since}) holds {self.path}; wait for it to finish or stop it")
        self.path.write_text(str(os.getpid()))
        self._held = stack
        return self

    def __exit__(self, *exc: object) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists (also when it belongs to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
