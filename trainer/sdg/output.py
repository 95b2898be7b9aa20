"""Leaf outputs on disk (``samples.jsonl`` + ``manifest.json``, written atomically) and summary tables."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from labrador.validators.atomic import atomic_write

from ..jsonl import read_jsonl, samples_bytes
from .results import LeafResult
from .stats import REASONS, legend


def write_leaf(folder: Path, samples: Sequence[dict[str, Any]], manifest: dict[str, Any]) -> dict[str, Any]:
    """Samples first, manifest last: a manifest on disk means the samples beside it are whole."""
    data = samples_bytes(samples)
    manifest = {**manifest, "samples_sha256": hashlib.sha256(data).hexdigest(), "samples": len(samples)}
    atomic_write(folder / "samples.jsonl", data)
    atomic_write(folder / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
    return manifest


def read_samples(folder: Path) -> list[dict[str, Any]]:
    """A leaf's kept samples (written by :func:`write_leaf`)."""
    return read_jsonl(folder / "samples.jsonl")


def summary_table(results: Sequence[LeafResult], title: str = "Synthetic data") -> Table:
    """One row per leaf: status, generated, kept, dropped by reason, schema retries (when any), requests sent,
    time, and how the reply formats were asked for (``schema``, ``words``, ``mixed``)."""
    reasons = [r for r in REASONS if any(res.dropped.get(r) for res in results)]
    reasons += sorted({r for res in results for r in res.dropped} - set(reasons))
    table = Table(title=title, caption=legend(reasons) or None, caption_justify="left")
    table.add_column("leaf", overflow="fold")
    table.add_column("status")
    retries = any(res.schema_retries for res in results)
    for name in ("generated", "kept", *reasons, *(["retries"] if retries else []), "sent", "seconds"):
        table.add_column(name, justify="right")
    table.add_column("structured")
    for res in results:
        style = {"failed": "red", "partial": "yellow", "cached": "dim", "skipped": "dim"}.get(res.status, "")
        status = f"[{style}]{res.status}[/]" if style else res.status
        table.add_row(Text(res.leaf.removesuffix("/qna.yaml")), status, str(res.generated), str(res.kept),
                      *(str(res.dropped.get(r, 0)) for r in reasons),
                      *([str(res.schema_retries)] if retries else []), str(res.sent), f"{res.seconds:.1f}",
                      res.structured or "-")
    return table


