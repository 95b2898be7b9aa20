"""Merge records for the nightly job: one JSON object per line, appended under a file lock.

Why a plain JSONL file: the nightly job (on a GPU runner) only needs "which leaves changed since the last
run"; a file is trivial to ship, read and audit. Records are idempotent by (repo, merge sha).
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from labrador.validators.changes import leaves_from_deltas
from labrador.validators.locks import file_lock

from .forge import ChangedFile


def leaves_of(files: Iterable[ChangedFile], taxonomy_dir: str) -> tuple[list[str], list[str]]:
    """(changed, deleted) leaf folders, taxonomy-relative, from a PR's list of changed files (GitHub's file
    statuses; a folder counts as a leaf at head when any file of the PR still lands in it)."""
    prefix = taxonomy_dir.strip("/")
    files = list(files)
    status = {"removed": "deleted", "added": "added", "renamed": "renamed"}
    deltas = [(status.get(f.status, "modified"), f.previous_path or f.path, f.path) for f in files]
    alive = {posixpath.dirname(f.path) for f in files if f.status != "removed"}
    head = prefix + "/" if prefix else ""
    changed, deleted = leaves_from_deltas(deltas, prefix, lambda folder: head + folder in alive)
    return changed, sorted(set(deleted) - set(changed))


def read_merges(path: Path, skipped: list[int] | None = None) -> list[dict[str, Any]]:
    """The records, in order. A line that is not a JSON object (a torn write, a hand edit) is skipped, its
    number appended to ``skipped``: one bad line never hides the others."""
    records = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):
                    record = None
                if isinstance(record, dict):
                    records.append(record)
                elif skipped is not None:
                    skipped.append(number)
    except FileNotFoundError:
        return []
    return records


def record_merge(path: Path, record: dict[str, Any]) -> bool:
    """Append ``record`` unless one with the same repo and merge_sha is there; True when appended."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(str(path) + ".lock"):
        for old in read_merges(path):
            if old.get("repo") == record["repo"] and old.get("merge_sha") == record["merge_sha"]:
                return False
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    return True
