"""What goes into and comes out of generating one leaf: plain data that ``api`` and ``output`` both use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Documents = Sequence[tuple[str, bytes]]


@dataclass(frozen=True)
class LeafInput:
    """One leaf to generate: its path inside the taxonomy, its bytes, and (optionally) its documents."""

    relpath: str
    data: bytes
    documents: Documents | None = None
    report: Any = None  # the checker's Report on ``data``, when the caller has one (not checked again)
    holdout: tuple[str, ...] = ()  # ids of seed pairs no teacher may see (validators.holdout)


@dataclass
class LeafResult:
    """What happened to one leaf. ``status``: ok | cached | partial (teacher errors; retried next run) | failed."""

    leaf: str
    status: str
    key: str = ""
    folder: Path | None = None
    generated: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    seconds: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    samples: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def schema_retries(self) -> int:
        """Replies asked again because they failed their schema (from the step records)."""
        return sum(int(s.get("schema_retries", 0)) for s in self.steps)

    @property
    def structured(self) -> str:
        """How the parsed steps' formats reached the teacher: schema (enforced where the backend can), words
        (asked in the prompt only: ``structured = off`` or a server that refused the field), mixed, or ""."""
        modes = {s.get("structured") for s in self.steps if s.get("structured")}
        return str(modes.pop()) if len(modes) == 1 else "mixed" if modes else ""
