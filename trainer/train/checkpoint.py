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

from labrador.validators.atomic import atomic_write_json, publish_dir

STATE = "state.json"
_NAME = re.compile(r"^(?P<phase>\d{2})-(?P<name>[A-Za-z0-9_-]+)-step(?P<step>\d{7})$")


def checkpoint_name(phase_index: int, phase: str, step: int) -> str:
    return f"{phase_index:02d}-{phase}-step{step:07d}"


def _ours(folder: Path) -> bool:
    """A complete checkpoint this trainer wrote: its ``state.json`` parses and names the run's fingerprint."""
    try:
        return "fingerprint" in json.loads((folder / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def checkpoints(root: Path) -> list[tuple[int, int, Path]]:
    """Complete checkpoints under ``root`` as (phase index, step, folder), oldest first; folders we did not
    write (no ``state.json`` of ours) are neither resumed from nor deleted."""
    found = []
    if root.is_dir():
        for d in root.iterdir():
            m = _NAME.match(d.name)
            if m and d.is_dir() and _ours(d):
                found.append((int(m["phase"]), int(m["step"]), d))
    return sorted(found)


class DamagedCheckpoint(RuntimeError):
    """A checkpoint whose files do not match what was written, or that cannot be loaded."""


def damage(folder: Path, state: dict[str, Any]) -> str | None:
    """Why ``folder`` cannot be resumed from (a file missing, cut short, or with a broken safetensors header),
    or ``None`` when its files are as written. Sizes come from the manifest in its ``state``."""
    from .config import safetensors_problem

    for rel, size in (state.get("files") or {}).items():
        f = folder / rel
        if not f.is_file():
            return f"{rel} is missing"
        if f.stat().st_size != size:
            return f"{rel} has {f.stat().st_size} bytes, {size} were written"
    for f in sorted(folder.rglob("*.safetensors")):
        problem = safetensors_problem(f)
        if problem:
            return problem
    return None


def usable(root: Path, say: Callable[[str], None] = lambda text: None) -> list[tuple[int, int, Path, dict]]:
    """Complete, undamaged checkpoints, newest first, as (phase index, step, folder, state); a damaged one is
    skipped with a message (the previous one is used instead)."""
    out = []
    for pi, step, d in reversed(checkpoints(root)):
        state = json.loads((d / STATE).read_text(encoding="utf-8"))
        problem = damage(d, state)
        if problem:
            say(f"checkpoint {d.name} is damaged ({problem}); falling back to the previous one")
            continue
        out.append((pi, step, d, state))
    return out


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
        files = {f.relative_to(tmp).as_posix(): f.stat().st_size for f in sorted(tmp.rglob("*")) if f.is_file()}
        atomic_write_json(tmp / STATE, {**state, "files": files})
        publish_dir(tmp, final)
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


_TEMP = re.compile(r"^\.tmp-\d{2}-[A-Za-z0-9_-]+-step\d{7}$|^\.\d{2}-[A-Za-z0-9_-]+-step\d{7}\.old\d+$")


def clean_temporaries(root: Path) -> None:
    """Remove what a killed run left half-written or half-deleted (never read, only removed): the temporary
    and ``.old`` folders this module names. Nothing else under ``root`` is touched."""
    if root.is_dir():
        for d in root.iterdir():
            if _TEMP.match(d.name) and d.is_dir():
                shutil.rmtree(d, ignore_errors=True)
