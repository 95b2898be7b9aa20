"""One night at a time: a lock file holding the owner's pid; a lock whose process is gone is stale and taken
over (a crashed night never blocks the next one)."""

from __future__ import annotations

import os
from pathlib import Path

from validators.procs import pid_alive


class Busy(RuntimeError):
    """Another night is running."""


class NightLock:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __enter__(self) -> NightLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and pid != os.getpid() and pid_alive(pid):
                    raise Busy(f"another nightly run (pid {pid}) holds {self.path}; wait for it to finish") from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)
