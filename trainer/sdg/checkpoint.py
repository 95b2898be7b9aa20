"""Crash safety: every finished teacher request is on disk the moment it completes.

A nightly run can die (OOM, pre-emption, Ctrl-C) hours into a leaf. Upstream restarted from
zero; here ``OUT/.checkpoints/<leaf-key>.jsonl`` holds ``{"key", "texts"}`` lines, so a rerun
sends only what never came back. A torn last line (killed mid-write) is tolerated and cut off.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO


def read_records(path: Path) -> tuple[dict[str, list[str]], int]:
    """Parse a checkpoint file: ``(key -> texts, byte length of the intact prefix)``.

    Lines that are not valid records are skipped; an unterminated last line is not part of the prefix.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, 0
    records: dict[str, list[str]] = {}
    good = data.rfind(b"\n") + 1  # an unterminated tail is a torn write: ignore and cut it
    for line in data[:good].splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("key"), str) and _texts(obj.get("texts")):
            records[obj["key"]] = obj["texts"]
    return records, good


def _texts(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(t, str) for t in value)


class CheckpointStore:
    """Append-only record of finished requests for one leaf; flushed per record, fsync'd periodically."""

    def __init__(self, path: Path, *, fsync_every: int = 64, fsync_seconds: float = 2.0) -> None:
        self.path = path
        self.fsync_every, self.fsync_seconds = fsync_every, fsync_seconds
        self.records, good = read_records(path)
        self.loaded = len(self.records)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] | None = open(path, "ab")  # noqa: SIM115 - held open for appends until close()
        if self._fh.tell() != good:
            self._fh.truncate(good)
            self._fh.seek(good)
        self._unsynced, self._last_sync = 0, time.monotonic()

    def get(self, key: str) -> list[str] | None:
        return self.records.get(key)

    def put(self, key: str, texts: list[str]) -> None:
        """Record one finished request now: no await happens between a reply and this write."""
        self.records[key] = list(texts)
        if self._fh is None:
            return
        line = json.dumps({"key": key, "texts": texts}, ensure_ascii=False, separators=(",", ":"))
        self._fh.write(line.encode("utf-8") + b"\n")
        self._fh.flush()  # in the OS now: survives the process being killed
        self._unsynced += 1
        if self._unsynced >= self.fsync_every or time.monotonic() - self._last_sync >= self.fsync_seconds:
            self._sync()

    def _sync(self) -> None:
        if self._fh is not None and self._unsynced:
            os.fsync(self._fh.fileno())
        self._unsynced, self._last_sync = 0, time.monotonic()

    def close(self) -> None:
        if self._fh is not None:
            self._sync()
            self._fh.close()
            self._fh = None

    def remove(self) -> None:
        """The leaf finished for good: its checkpoint is no longer needed."""
        self.close()
        self.path.unlink(missing_ok=True)
