"""One progress display for every long step (checking, generating, sampling, training, evaluating): rich's bar
on a terminal, and plain lines everywhere else (CI logs, ``nohup``, ``| tee``), where a bar prints nothing and
23 silent minutes look like a hang.

A plain line says what, done/total, the rate and the time left, and comes every ``every_s`` seconds (30 by
default; the environment variable ``LABRADOR_PROGRESS_EVERY_S`` sets it for a whole run, 0: every update), and
once more at the end of a step that printed any: a step shorter than that stays quiet. The rendering is a pure
function (:func:`line`), so the clock can be a test's.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

EVERY_S = 30.0
EVERY_ENV = "LABRADOR_PROGRESS_EVERY_S"


def every_s() -> float:
    """The plain lines' interval: ``LABRADOR_PROGRESS_EVERY_S`` when it is a number >= 0, else 30 s."""
    try:
        value = float(os.environ.get(EVERY_ENV, ""))
    except ValueError:
        return EVERY_S
    return value if value >= 0 else EVERY_S


def line(what: str, done: int, total: int | None, elapsed_s: float, note: str = "", start: int = 0) -> str:
    """``what: done/total (pct%), rate/s, ETA m:ss[, note]`` (without a total: done and rate only). ``start``:
    where a resumed step began (the rate counts this run's work only)."""
    rate = (done - start) / elapsed_s if elapsed_s > 0 else 0.0
    parts = [f"{done}/{total} ({100 * done / total:.0f}%)" if total else f"{done}"]
    parts.append(f"{rate:.2f}/s" if rate < 10 else f"{rate:.0f}/s")
    if total and 0 < done < total and rate > 0:
        parts.append(f"ETA {_clock((total - done) / rate)}")
    elif total and done >= total:
        parts.append(f"took {_clock(elapsed_s)}")
    return f"{what}: {', '.join(parts)}" + (f", {note}" if note else "")


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """``with Progress("training night", total) as p: p.update(done, note)``. ``live``: a rich bar (default:
    when ``stream`` is a terminal); ``show=False``: nothing at all (``--quiet``)."""

    def __init__(self, what: str, total: int | None, *, start: int = 0, show: bool = True,
                 live: bool | None = None, stream: TextIO | None = None, every: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.total, self.done, self.note = what, total, start, ""
        self.stream = stream if stream is not None else sys.stderr
        self.show = show
        self.live = show and (self.stream.isatty() if live is None else live)
        self.every_s, self.clock = every_s() if every is None else every, clock
        self.said = 0
        self._said_at: tuple[int, str] | None = None
        self.t0 = self.last = clock()
        self.first = start
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[note]}"), TimeRemainingColumn(),
                            console=Console(file=self.stream))
            self._task = self._bar.add_task(self.what, total=self.total, completed=self.done, note="")
            self._bar.start()
        return self

    def update(self, done: int, note: str = "", total: int | None = None) -> None:
        self.done, self.note = done, note
        if total is not None:
            self.total = total
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=self.total, note=note)
        elif self.show and self.clock() - self.last >= self.every_s:
            self._say()

    def advance(self, n: int = 1, note: str = "") -> None:
        self.update(self.done + n, note)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.show and self._said_at != (self.done, self.note) and \
                (self.said or self.clock() - self.t0 >= self.every_s):  # a long step's last line, said once
            self._say()

    def _say(self) -> None:
        self.last = self.clock()
        self.said += 1
        self._said_at = (self.done, self.note)
        print(line(self.what, self.done, self.total, max(self.last - self.t0, 0.0), self.note, self.first),
              file=self.stream, flush=True)
