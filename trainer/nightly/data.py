"""A night's data, read the same way by the night and its evaluation: JSONL rows (errors name file and line),
an earlier night's rows as they stand tonight, and a leaf's seed examples as conversations."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class NightError(RuntimeError):
    """A night that cannot go on; the message is the run's recorded reason."""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """A night's JSONL data (a night that wrote none has none)."""
    from ..jsonl import read_jsonl as read

    return read(path, NightError) if path.is_file() else []


def current_rows(run: dict[str, Any], tonight: dict[str, str]) -> list[dict[str, Any]]:
    """An earlier night's samples whose leaf exists tonight with the content it had that night (a removed or
    rewritten contribution is never trained or measured again, however main got there)."""
    path = (run.get("datasets") or {}).get("new")
    if not path:
        return []
    then = run.get("leaf_hashes") or {}
    return [r for r in read_jsonl(Path(path))
            if tonight.get(r.get("leaf", "")) is not None and then.get(r.get("leaf", "")) == tonight[r["leaf"]]]


