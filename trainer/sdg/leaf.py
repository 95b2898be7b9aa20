"""What the generator needs from one taxonomy leaf: its kind, seeds and template variables.

The leaf is read with the project's one checker (``labrador.validators.check_file``), so SDG never runs
on a file that the contributor was told is invalid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labrador.validators import Config, Report, check_file
from labrador.validators.holdout import without
from labrador.validators.seeds import leaf_kind, seed_examples


class LeafError(ValueError):
    """A leaf that cannot be generated from (invalid, unsafe path, unreadable documents)."""


@dataclass(frozen=True)
class LeafSpec:
    """A validated leaf: ``kind`` picks the pipeline; ``info`` is the ``leaf`` variable in prompts."""

    relpath: str
    kind: str  # freeform | grounded | knowledge
    hash: str  # sha256 of the leaf bytes
    data: dict[str, Any]
    seeds: tuple[dict[str, Any], ...]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        """The leaf's folder inside the taxonomy (``knowledge/history/printing_press``)."""
        return self.relpath.rsplit("/", 1)[0]


def _safe_relpath(relpath: str) -> str:
    rel = relpath.replace("\\", "/").removeprefix("./")
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or ":" in parts[0]:
        raise LeafError(f"leaf path {relpath!r} must be relative to the taxonomy root, without '..'")
    return rel


def load_leaf(relpath: str, leaf_bytes: bytes, config: Config | None = None, report: Report | None = None,
              holdout: Collection[str] = ()) -> LeafSpec:
    """Check and parse a leaf; raises :class:`LeafError` naming the first problems. ``report``: the checker's
    verdict on these bytes when the caller already has it (the leaf is then not checked a second time).
    ``holdout``: ids of seed pairs taken out after the check (held-out seeds: no prompt ever shows them)."""
    rel = _safe_relpath(relpath)
    if report is None or report.path != rel or not isinstance(report.data, dict):
        report = check_file(rel, leaf_bytes, config)
    if not report.ok:
        first = "; ".join(f"{f.line}:{f.column} {f.message}" for f in report.errors[:3])
        raise LeafError(f"{rel} does not pass the checker ({len(report.errors)} errors): {first}")
    data = report.data
    if holdout:
        data = without(data, rel.rsplit("/", 1)[0], holdout)
    kind = leaf_kind(report.branch, data)
    if kind == "knowledge":
        seeds = tuple({"context": s.context, "questions_and_answers": [
            {"question": qa.question, "answer": qa.answer} for qa in s.pairs]} for s in seed_examples(data))
    else:
        seeds = tuple({"question": s.pairs[0].question, "answer": s.pairs[0].answer, "context": s.context}
                      for s in seed_examples(data))
    info = {
        "path": rel.rsplit("/", 1)[0],
        "branch": report.branch,
        "kind": kind,
        "task_description": str(data.get("task_description") or "").strip(),
        "domain": str(data.get("domain") or "").strip(),
        "document_outline": str(data.get("document_outline") or "").strip(),
        "seeds": list(seeds),
    }
    return LeafSpec(rel, kind, hashlib.sha256(leaf_bytes).hexdigest(), data, seeds, info)


def resolve_documents(spec: LeafSpec, config: Config | None, local_repo: Path | None) -> list[tuple[str, bytes]]:
    """The knowledge leaf's documents from its ``document:`` block (may fetch with pygit2: run in a thread)."""
    from labrador.validators.documents import DocumentError
    from labrador.validators.documents import resolve_documents as resolve

    try:
        return resolve(spec.data.get("document"), config or Config(), local_repo)
    except DocumentError as exc:
        raise LeafError(f"{spec.relpath}: documents: {exc}") from None
