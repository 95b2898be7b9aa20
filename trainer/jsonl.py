"""Reading JSON Lines: the one reader for samples, mixes, replay sets and a night's data.

Why one: every reader must say which file and line is bad (nothing skipped silently) and treat blank lines
the same way; callers pick the error type their command turns into a one-line message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def iter_jsonl(path: Path, error: type[Exception] = ValueError) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of ``path``; a line that is not a JSON object raises
    ``error("<path>:<line>: ...")``."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise error(f"{path}:{number}: not a JSON object ({getattr(exc, 'msg', exc)}); each line must "
                            "be one JSON object") from None
            if not isinstance(row, dict):
                raise error(f"{path}:{number}: not a JSON object but {type(row).__name__}; each line must be "
                            "one JSON object")
            yield number, row


def read_jsonl(path: Path, error: type[Exception] = ValueError) -> list[dict[str, Any]]:
    """Every object of ``path`` (see :func:`iter_jsonl`)."""
    return [row for _, row in iter_jsonl(path, error)]
