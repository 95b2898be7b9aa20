"""Progress for long generation runs: rich bars per pipeline stage on a terminal, one line per leaf in logs.

Stages are aggregated across leaves by step (``generate:freeform_questions``, ``judge:...``), because
what a person watching a run wants to know is where the requests are going, not one bar per leaf.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from .engine import ProgressEvent

if TYPE_CHECKING:
    from .api import LeafResult


class ProgressDisplay:
    """Feed it :class:`ProgressEvent` (``event``) and finished leaves (``leaf_done``); use as a context."""

    def __init__(self, console: Console, leaves: int, live: bool = True, lines: bool = True) -> None:
        self.console, self.leaves, self.live = console, leaves, live
        self._lines: Any = None  # not live: requests done/total in a line every 30 s (validators.progress)
        self.lines = lines
        self.finished = 0
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._cells: dict[str, dict[str, tuple[int, int]]] = {}  # stage -> leaf -> (done, total)
        self._leaf_task: TaskID | None = None

    @staticmethod
    def wanted(console: Console) -> bool:
        """Live bars only on a terminal, never in CI logs."""
        return console.is_terminal and not os.environ.get("CI")

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=self.console, transient=True)
            self._progress.start()
            self._leaf_task = self._progress.add_task("leaves", total=self.leaves)
        elif self.lines:
            from labrador.validators.progress import Progress as Lines

            self._lines = Lines("generating (requests)", None, live=False, stream=self.console.file).__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._lines is not None:
            self._lines.__exit__(exc_type, exc, tb)
            self._lines = None

    @staticmethod
    def stage(label: str) -> str:
        """``3:judge:freeform_question_judge`` -> ``judge:freeform_question_judge`` (same stage, any leaf)."""
        return label.split(":", 1)[1] if ":" in label else label

    def event(self, ev: ProgressEvent) -> None:
        stage = self.stage(ev.step)
        cells = self._cells.setdefault(stage, {})
        if ev.phase == "end":
            _, total = cells.get(ev.leaf, (0, 0))
            total = max(total, ev.total)
            cells[ev.leaf] = (total, total)
        else:
            cells[ev.leaf] = (ev.done, ev.total)
        if self._lines is not None:
            done = sum(d for c in self._cells.values() for d, _ in c.values())
            total = sum(t for c in self._cells.values() for _, t in c.values())
            self._lines.update(done, f"{self.finished}/{self.leaves} leaves done, now {stage}", total=max(total, done))
        if self._progress is None:
            return
        task = self._tasks.get(stage)
        if task is None:
            task = self._tasks[stage] = self._progress.add_task(stage, total=0)
        done = sum(d for d, _ in cells.values())
        total = sum(t for _, t in cells.values())
        self._progress.update(task, completed=done, total=max(total, done))

    def leaf_done(self, res: LeafResult) -> None:
        self.finished += 1
        if self._progress is not None and self._leaf_task is not None:
            self._progress.update(self._leaf_task, completed=self.finished)
            return
        note = f" ({res.error})" if res.error else ""
        self.console.print(f"[{self.finished}/{self.leaves}] {res.leaf}: {res.status}, kept {res.kept} of "
                           f"{res.generated} generated, {res.sent} requests, {res.seconds:.1f} s{note}",
                           markup=False, highlight=False)
