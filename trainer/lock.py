"""One writer per folder: a lock file holding the owner's pid. A lock whose process is gone is stale and taken
over (a crashed run never blocks the next one). The nightly job locks its state dir, ``labrador train`` its
``output_dir``: two runs writing the same files would interleave metrics and race for the weights."""

from __future__ import annotations

import os
import time
from pathlib import Path

from validators.procs import pid_alive


class Busy(RuntimeError):
    """Another live process holds the lock; the message names it."""


class PidLock:
    """``with PidLock(path, "a nightly run"):`` — exclusive while the body runs; ``Busy`` when a live process
    holds it."""

    def __init__(self, path: Path, what: str = "another run") -> None:
        self.path = Path(path)
        self.what = what

    def __enter__(self) -> PidLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().strip() or 0)
                    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.path.stat().st_mtime))
                except (OSError, ValueError):
                    pid, since = 0, "?"
                if pid and pid_alive(pid):
                    raise Busy(f"{self.what} (pid {pid}, since {since}) holds {self.path}; wait for it to finish "
                               "or stop it") from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


NightLock = PidLock  # the nightly job's name for it
