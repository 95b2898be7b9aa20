"""Resumable checkpoints and finished-phase folders, written so a kill at any moment leaves nothing half-read.

Why rename-into-place: a checkpoint is written into a temporary folder, its ``state.json`` last, then
renamed to its final name; a folder without ``state.json`` (or with a temporary name) is never resumed
from. Only the newest ``keep`` checkpoints stay. A finished phase's Hugging Face folder is published the
same way, and its ``eval.json`` (written last) marks the phase done.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainer.atomic import atomic_write_json

STATE = "state.json"
_NAME = re.compile(r"^(?P<phase>\d{2})-(?P<name>[A-Za-z0-9_-]+)-step(?P<step>\d{7})$")


def checkpoint_name(phase_index: int, phase: str, step: int) -> str:
    return f"{phase_index:02d}-{phase}-step{step:07d}"


def checkpoints(root: Path) -> list[tuple[int, int, Path]]:
    """Complete checkpoints under ``root`` as (phase index, step, folder), oldest first."""
    found = []
    if root.is_dir():
        for d in root.iterdir():
            m = _NAME.match(d.name)
            if m and (d / STATE).is_file():
                found.append((int(m["phase"]), int(m["step"]), d))
    return sorted(found)


def latest(root: Path) -> tuple[int, int, Path, dict[str, Any]] | None:
    """The newest complete checkpoint and its state, or ``None``."""
    found = checkpoints(root)
    if not found:
        return None
    pi, step, d = found[-1]
    return pi, step, d, json.loads((d / STATE).read_text(encoding="utf-8"))


def publish(tmp: Path, final: Path) -> None:
    """Move a fully written folder to its final name (replacing an older one with that name)."""
    if final.exists():
        old = final.with_name(f".{final.name}.old{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def save_checkpoint(
    root: Path,
    phase_index: int,
    phase: str,
    step: int,
    state: dict[str, Any],
    write: Callable[[Path], None],
    *,
    keep: int,
    is_main: bool = True,
    barrier: Callable[[], None] = lambda: None,
) -> Path:
    """``write(tmp)`` fills a temporary folder (every rank writes its part); the main process then adds
    ``state.json``, renames the folder into place and prunes all but the newest ``keep``."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(phase_index, phase, step)
    tmp = root / f".tmp-{final.name}"
    if is_main and tmp.exists():
        shutil.rmtree(tmp)
    barrier()
    write(tmp)
    barrier()
    if is_main:
        atomic_write_json(tmp / STATE, state)
        publish(tmp, final)
        prune(root, keep)
    barrier()
    return final


def prune(root: Path, keep: int) -> None:
    """All but the newest ``keep`` complete checkpoints removed (also on resume: a kill between a checkpoint's
    rename and the pruning after it leaves one too many). Each is renamed out of the way first, so a kill in
    the middle of deleting leaves a ``.old`` folder for :func:`clean_temporaries`, never a half-deleted one
    under a checkpoint's name."""
    for _, _, old in checkpoints(root)[:-keep]:
        doomed = old.with_name(f".{old.name}.old{os.getpid()}")
        os.replace(old, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def clean_temporaries(root: Path) -> None:
    """Remove what a killed run left half-written or half-deleted (never read, only removed): temporary and
    ``.old`` folders, and a checkpoint-named folder without its ``state.json``."""
    if root.is_dir():
        for d in root.iterdir():
            broken = _NAME.match(d.name) is not None and not (d / STATE).is_file()
            if d.name.startswith(".tmp-") or ".old" in d.name or broken:
                shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)
