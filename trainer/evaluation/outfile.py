"""Where ``labrador evaluate --out FILE`` may write: a new file, or one an earlier evaluation wrote.

Why: ``--out`` names any path a user types, and a typo must never turn their notes into our JSON. The result
JSON and every row of its ``.details.jsonl`` sibling carry a marker key (:data:`MARKER`), so each file can be
recognised alone (a run killed between the two writes leaves both recognisable). Both are checked, and the
folder proved writable, *before* any model answers, so a refusal costs nothing and finished work is never lost
to an unwritable target.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labrador.validators.atomic import atomic_write, probe_writable

MARKER = "labrador_evaluation"  # key of our result JSON; its value is the format version
VERSION = 1


class OutFileError(ValueError):
    """An ``--out`` that must not or cannot be written; the message names the file and the fix."""


def details_path(out: Path) -> Path:
    return out.with_name(out.stem + ".details.jsonl")


def _ours(path: Path, first_line: bool = False) -> bool:
    """Is the file at ``path`` one of ours (its JSON object, or with ``first_line`` its first JSON line, holds
    the marker)? An empty details file holds nothing to lose: ours too."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.readline(1 << 20) if first_line else fh.read(64 << 20)
        if first_line and not text:
            return True
        data = json.loads(text)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(data, dict) and MARKER in data


def check_out(out: Path) -> None:
    """Refuse ``out`` (and its details sibling) unless both are new or ours, and prove the folder writable."""
    details = details_path(out)
    for path, rows in ((out, False), (details, True)):
        if path.exists() and not path.is_dir() and not _ours(path, rows):
            raise OutFileError(f"{path} exists and was not written by `labrador evaluate` (no {MARKER!r} key); "
                               "choose another --out or move that file away yourself (nothing was changed)")
    try:
        probe_writable(out)
        probe_writable(details)
    except OSError as exc:
        raise OutFileError(f"--out {out} cannot be written: {exc.strerror or exc}; choose a file in a folder you "
                           "can write (nothing was evaluated yet)") from None


def write_out(out: Path, result: dict[str, Any], details: list[dict[str, Any]]) -> None:
    """Both files, each atomically and marked as ours."""
    rows = "".join(json.dumps({**r, MARKER: VERSION}, sort_keys=True, ensure_ascii=False) + "\n" for r in details)
    atomic_write(details_path(out), rows.encode("utf-8"))
    atomic_write(out, (json.dumps({**result, MARKER: VERSION}, indent=1, sort_keys=True) + "\n").encode("utf-8"))
