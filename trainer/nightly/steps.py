"""A run's identity on disk: its ``runs/<id>/`` folder (claimed by the row's random uid), the markers of its
finished steps (stamped with that uid), and the hash of the settings a resume must share. A folder or marker
of another run under the same id is never reused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labrador.validators.atomic import atomic_write_json

from .context import Night


class Steps:
    """Markers of finished steps for one run, each stamped with the run's identity: a marker left by another
    run under the same id (a registry moved aside or emptied) is never taken as done."""

    def __init__(self, run_dir: Path, identity: str) -> None:
        self.dir = run_dir / "steps"
        self.identity = identity
        self.dir.mkdir(parents=True, exist_ok=True)

    def done(self, name: str) -> dict[str, Any] | None:
        p = self.dir / f"{name}.json"
        try:
            data = json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("identity") == self.identity else None

    def mark(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        atomic_write_json(self.dir / f"{name}.json", {**data, "identity": self.identity})
        return data


def settings_hash(night: Night) -> str:
    """What decides a night's outputs besides the commit: its settings and the teacher's."""
    import hashlib
    from dataclasses import asdict

    text = json.dumps({"nightly": asdict(night.settings), "teacher": night.teacher.spec,
                       "profile": night.teacher.profile_name}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def claim_run_dir(night: Night, record: dict[str, Any]) -> Path:
    """``runs/<id>/`` for this record. A folder of that name left by another run (its registry was moved
    aside or emptied) is moved to ``runs/.stale/`` — kept, never reused, never deleted."""
    import time
    import uuid

    run_dir = night.state / "runs" / record["id"]
    mine = run_dir / "identity.json"
    if run_dir.exists():
        try:
            found = json.loads(mine.read_text(encoding="utf-8")).get("uid")
        except (OSError, ValueError, AttributeError):
            found = None
        if found != record["uid"]:
            aside = night.state / "runs" / ".stale" / f"{record['id']}-{time.strftime('%Y%m%d-%H%M%S')}-" \
                f"{uuid.uuid4().hex[:6]}"
            aside.parent.mkdir(parents=True, exist_ok=True)
            run_dir.rename(aside)
            night.say(f"{run_dir} belonged to another run (not in this registry): moved to {aside}")
    if not run_dir.exists():
        run_dir.mkdir(parents=True)
        atomic_write_json(mine, {"uid": record["uid"], "taxonomy_commit": record["taxonomy_commit"]})
    return run_dir
