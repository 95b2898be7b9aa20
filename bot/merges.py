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

from validators.gitfetch import file_lock

from .forge import ChangedFile

LEAF_FILE = "qna.yaml"


def leaves_of(files: Iterable[ChangedFile], taxonomy_dir: str) -> tuple[list[str], list[str]]:
    """(changed, deleted) leaf folders, taxonomy-relative, from a PR's list of changed files."""
    prefix = taxonomy_dir.strip("/")
    head = prefix + "/" if prefix else ""
    changed: set[str] = set()
    deleted: set[str] = set()
    for f in files:
        for path, gone in ((f.path, f.status == "removed"), (f.previous_path, True)):
            if not path or not path.startswith(head):
                continue
            folder = posixpath.dirname(path[len(head):])
            if not folder:
                continue
            if gone and posixpath.basename(path) == LEAF_FILE:
                deleted.add(folder)
            elif not gone:
                changed.add(folder)
    return sorted(changed), sorted(deleted - changed)


def read_merges(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []


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
