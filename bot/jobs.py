"""Jobs: what the webhook hands to the workers. Plain data, no secrets, JSON-serializable.

A job names the work (kind), where (repo, PR, head SHA bound at webhook time) and who asked; the worker looks
everything else up itself, with its own credentials.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

VALIDATE = "validate"  # a push: validate the changed leaves
RETRY = "retry"  # /lab retry: validate again (kept apart so a refused request never swallows a push)
PREVIEW = "preview"  # /lab preview: synthetic samples for the changed leaves
HELP = "help"  # /lab help or an unknown /lab command
MERGED = "merged"  # a PR merged into the default branch: record it for the nightly job
KINDS = (VALIDATE, RETRY, PREVIEW, HELP, MERGED)


@dataclass(frozen=True)
class Job:
    """One unit of work. ``sha`` is the head the job is bound to ("" when the bot could not tell); a command
    is bound again when it runs, from everything the bot has seen of the PR's heads by then (``said_at``).
    ``pr`` 0: a re-run of a fork's check, whose pull request the worker finds by ``sha``."""

    kind: str
    repo: str  # owner/name
    pr: int
    sha: str = ""
    installation: int = 0
    comment_id: int = 0
    requester: str = ""
    command: str = ""  # the command line as typed (for the notice), trimmed
    delivery: str = ""
    rerun: int = 0  # how many times the orphan sweep queued this work again
    said_at: float = 0.0  # a command: when its comment was written (GitHub's created_at, whole seconds; -1: unreadable)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown job kind {self.kind!r}")

    @property
    def key(self) -> str:
        """Coalescing key: two pending jobs with the same key are the same work. A command carries who asked,
        so an outsider's pending request never swallows a maintainer's (permission is checked per requester)."""
        base = f"{self.repo}#{self.pr}@{self.sha}:{self.kind}"
        return f"{base}:{self.requester}" if self.kind in (RETRY, PREVIEW, HELP) and self.requester else base

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def again(self) -> Job:
        """The same work as a fresh job (new id), counted as a rerun."""
        return replace(self, id=uuid.uuid4().hex, created=time.time(), rerun=self.rerun + 1)
