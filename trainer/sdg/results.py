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
