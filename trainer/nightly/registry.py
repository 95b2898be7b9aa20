"""The run registry: one SQLite row per night, written in transactions, so a run is recorded whole or not at
all. A row is ``running`` while its night is under way (a killed night is resumed under the same id),
then ``promoted``, ``rejected``, ``no-changes`` or ``failed``."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

FINAL = ("promoted", "rejected", "no-changes", "failed")


class RegistryError(RuntimeError):
    """The registry file cannot be read or holds a row that is not a run record; the message says what to do."""


class Registry:
    def __init__(self, path: Path) -> None:
        self.path = Path(path).resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._guard(), closing(self._db()) as db, db:
            db.execute("CREATE TABLE IF NOT EXISTS runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, "
                       "status TEXT NOT NULL, started REAL, finished REAL, record TEXT NOT NULL)")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise RegistryError(f"{self.path}: the run registry cannot be read ({exc}); move it aside to start a "
                                "new one (its run folders are kept and never reused)") from None

    def _db(self) -> sqlite3.Connection:
        with self._guard():
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
        return db

    def start(self, record: dict[str, Any]) -> dict[str, Any]:
        """A new ``running`` row with the next id (``night-0001``...)."""
        with self._guard(), closing(self._db()) as db, db:
            seq = (db.execute("SELECT COALESCE(MAX(seq), 0) FROM runs").fetchone()[0]) + 1
            record = {**record, "id": f"night-{seq:04d}", "status": "running"}
            db.execute("INSERT INTO runs (seq, id, status, started, record) VALUES (?, ?, ?, ?, ?)",
                       (seq, record["id"], "running", time.time(), json.dumps(record, sort_keys=True)))
        return record

    def update(self, record: dict[str, Any]) -> None:
        finished = time.time() if record["status"] in FINAL else None
        with self._guard(), closing(self._db()) as db, db:
            db.execute("UPDATE runs SET status = ?, finished = ?, record = ? WHERE id = ?",
                       (record["status"], finished, json.dumps(record, sort_keys=True), record["id"]))

    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first."""
        with self._guard(), closing(self._db()) as db:
            rows = db.execute("SELECT seq, record, started, finished FROM runs ORDER BY seq DESC").fetchall()
        out = []
        for seq, r, s, f in rows:
            try:
                record = json.loads(r)
                if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                    raise ValueError("not a run record")
            except (TypeError, ValueError) as exc:
                raise RegistryError(f"{self.path}: row {seq} is not a run record ({exc}); move the registry aside "
                                    "to start a new one") from None
            out.append({**record, "started": s, "finished": f})
        return out

    def get(self, run_id: str) -> dict[str, Any] | None:
        return next((r for r in self.runs() if r["id"] == run_id), None)

    def unfinished(self) -> dict[str, Any] | None:
        return next((r for r in self.runs() if r["status"] == "running"), None)

    def last_promoted(self) -> dict[str, Any] | None:
        return next((r for r in self.runs() if r["status"] == "promoted"), None)

    def promoted(self) -> list[dict[str, Any]]:
        """Promoted runs, oldest first (the nights whose data is replayed)."""
        return [r for r in reversed(self.runs()) if r["status"] == "promoted"]
