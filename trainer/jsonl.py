"""Reading JSON Lines: the one reader for samples, mixes, replay sets and a night's data.

Why one: every reader must say which file and line is bad (nothing skipped silently) and treat blank lines
the same way; callers pick the error type their command turns into a one-line message. Lines are read as
bytes, so a line that is not UTF-8, nested too deeply for the parser, or longer than the caller's bound is
reported by its line number (an over-long line is handed to ``on_long`` before any parsing, never parsed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any


def iter_jsonl(path: Path, error: type[Exception] = ValueError, *, max_line_bytes: int | None = None,
               on_long: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of ``path``; a line that is not a JSON object raises
    ``error("<path>:<line>: ...")``. A line over ``max_line_bytes`` is skipped with ``on_long(line, size)``
    when given, else it is an error."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            if max_line_bytes is not None and len(raw) > max_line_bytes:
                if on_long is None:
                    raise error(f"{path}:{number}: the line is {len(raw):,} bytes, over the limit of "
                                f"{max_line_bytes:,}")
                on_long(number, len(raw))
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise error(f"{path}:{number}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                            "save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except RecursionError:
                raise error(f"{path}:{number}: nested too deeply to read; each line must be one flat sample "
                            "object") from None
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


def samples_bytes(samples: Sequence[dict[str, Any]]) -> bytes:
    """JSON Lines with sorted keys: same samples, same bytes (and ``datasets``' json loader reads it)."""
    return b"".join(json.dumps(s, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n" for s in samples)
