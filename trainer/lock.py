"""One writer per folder: an exclusive ``flock`` on a lock file (the checker's :func:`file_lock`, the one lock
of the project), whose content names the holder's pid for the message. The kernel releases the lock when its
process dies, so a crashed run never blocks the next one and two runs can never both take over a stale lock.
The nightly job locks its state dir, ``labrador train`` its ``output_dir``: two runs writing the same files
would interleave metrics and race for the weights."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from validators.gitfetch import file_lock


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

