"""Which leaves a model was trained on: ``labrador-leaves.json`` beside its weights, written by the nightly job
when it trains a model (every leaf on main that night: tonight's and the earlier nights' it replays). The
evaluation calls a leaf "new" when its baseline's file lacks it; a model without the file (a base model,
any outside folder) says nothing, and no leaf is "new" against it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from labrador.validators.atomic import atomic_write_json

SEEN_FILE = "labrador-leaves.json"


def read_seen(model: str | Path) -> set[str] | None:
    path = Path(model) / SEEN_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # unreadable: as if absent (the verdicts then fall back to deltas)
    leaves = data.get("leaves") if isinstance(data, dict) else None
    return {str(x) for x in leaves} if isinstance(leaves, list) else None


def write_seen(model: str | Path, leaves: Iterable[str]) -> None:
    atomic_write_json(Path(model) / SEEN_FILE, {"leaves": sorted(set(leaves))})
