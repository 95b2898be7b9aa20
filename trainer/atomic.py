"""Files that readers see whole or not at all: written beside their final name, fsynced, renamed into place.

One helper for every output a killed run must never leave half-written (generated samples, phase files,
checkpoint state, metrics, reports). Dependency-free, so the trainer imports it without the generator.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` so that readers see the old file or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_json(path: Path, data: Any) -> None:
    """``data`` as indented, key-sorted JSON, written with :func:`atomic_write`."""
    atomic_write(Path(path), (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"))


def atomic_write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """One JSON object per line, written with :func:`atomic_write`."""
    text = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
    atomic_write(Path(path), text.encode("utf-8"))


def publish_dir(tmp: Path, final: Path) -> None:
    """Move a fully written folder ``tmp`` to ``final`` (same file system), replacing an older ``final`` that
    the caller has checked is its own: the old one is renamed aside first, so readers see one or the other."""
    tmp, final = Path(tmp), Path(final)
    if final.exists():
        old = final.with_name(f".{final.name}.old{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(final.parent)
