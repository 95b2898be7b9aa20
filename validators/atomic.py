"""Files that readers see whole or not at all: written beside their final name, fsynced, renamed into place.

One helper for every output a killed run must never leave half-written (the checker's cache, generated
samples, phase files, checkpoint state, metrics, reports, plots, distillation shards, model folders). It
sits at the bottom layer and is dependency-free, so every package above uses this one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file name beside ``path`` for a writer that wants a name (``savefig``, ``save_file``); when
    the block ends the file is fsynced and renamed to ``path``; on an error it is removed and ``path`` stays
    as it was. The name keeps ``path``'s suffix, for writers that pick a format by it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` so that readers see the old file or the new one, never half of either."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(data)


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
    the caller has checked is its own: its files are synced to disk first, and the old one is renamed aside, so
    readers see one whole folder or the other, also after a power cut."""
    tmp, final = Path(tmp), Path(final)
    for f in tmp.rglob("*"):
        if f.is_file() and not f.is_symlink():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    if final.exists():
        old = final.with_name(f".{final.name}.old{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(final.parent)


def probe_writable(path: Path) -> None:
    """Fail now, not after hours of work, when ``path`` cannot be written the way :func:`atomic_path` writes
    it: a folder is in the way, a file stands where a parent folder should be, or the folder refuses a new file
    (permissions, a read-only file system; tried for real, so it holds for root too). Raises ``OSError`` whose
    message names the path; creates the missing parent folders, nothing else."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"{parent} is a file, so {path} cannot be written under it")
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".probe", dir=path.parent)
    os.close(fd)
    os.unlink(name)
