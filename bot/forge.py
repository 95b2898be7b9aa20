"""The forge interface: exactly what the bot needs from GitHub, as a small protocol.

Why a protocol: job logic is tested against an in-memory forge, and the real client (``labrador.bot.github``) is the
only module that knows about github3.py, tokens and HTTP. Calls are synchronous (workers run in threads).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

STICKY_MARKER = "<!-- labrador:sticky -->"
ANNOTATION_BATCH = 50  # GitHub accepts at most 50 annotations per request
MAX_SUMMARY = 65_535  # check run output.summary / output.text limit (characters)
CONCLUSIONS = ("success", "failure", "neutral", "cancelled", "timed_out", "action_required", "skipped")
WRITE_PERMISSIONS = ("admin", "maintain", "write")


class ForgeError(Exception):
    """The forge refused or failed; the message is safe to show (no tokens, no URLs with credentials)."""


class RateLimited(ForgeError):
    """GitHub's rate limit is used up for longer than the job may wait (the message says until when)."""


class HeadMissing(ForgeError):
    """The commit a job is bound to is no longer reachable from the pull request (force-push)."""


@dataclass(frozen=True)
class PullRequest:
    repo: str
    number: int
    state: str  # open | closed
    head_sha: str
    base_ref: str
    base_sha: str
    default_branch: str
    author: str
    clone_url: str  # of the base repository: refs/pull/N/head is fetched from there
    merged: bool = False
    merge_commit_sha: str = ""
    updated_at: float = 0.0


@dataclass(frozen=True)
class ChangedFile:
    path: str
    status: str  # added | removed | modified | renamed | copied | changed | unchanged
    previous_path: str = ""


@dataclass(frozen=True)
class Comment:
    id: int
    author: str
    body: str


@dataclass(frozen=True)
class Annotation:
    """One line-level finding on a check run (GitHub renders it as plain text, so no escaping is needed)."""

    path: str
    start_line: int
    end_line: int
    level: str  # notice | warning | failure
    message: str
    title: str = ""
    raw_details: str = ""
    start_column: int | None = None
    end_column: int | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "start_line": self.start_line, "end_line": self.end_line,
                               "annotation_level": self.level, "message": self.message[:60_000]}
        if self.title:
            out["title"] = self.title[:255]
        if self.raw_details:
            out["raw_details"] = self.raw_details[:60_000]
        if self.start_column and self.start_line == self.end_line:  # columns only on single-line annotations
            out["start_column"] = self.start_column
            out["end_column"] = self.end_column or self.start_column
        return out


@dataclass(frozen=True)
class CheckOutput:
    title: str
    summary: str
    text: str = ""
    annotations: tuple[Annotation, ...] = field(default_factory=tuple)


def check_payloads(output: CheckOutput, status: str = "in_progress", conclusion: str | None = None,
                   now: datetime | None = None) -> list[dict[str, Any]]:
    """The PATCH bodies that write ``output`` to a check run: annotations in batches of 50 (GitHub appends
    each batch), the status and conclusion on the last one so the run completes only when all are in."""
    if conclusion is not None and conclusion not in CONCLUSIONS:
        raise ValueError(f"unknown check conclusion {conclusion!r}")
    base = {"title": output.title[:255], "summary": output.summary[:MAX_SUMMARY]}
    if output.text:
        base["text"] = output.text[:MAX_SUMMARY]
    notes = [a.to_api() for a in output.annotations]
    batches = [notes[i:i + ANNOTATION_BATCH] for i in range(0, len(notes), ANNOTATION_BATCH)] or [[]]
    payloads: list[dict[str, Any]] = []
    for i, batch in enumerate(batches):
        body: dict[str, Any] = {"output": dict(base, annotations=batch) if batch else dict(base)}
        if i == len(batches) - 1:
            body["status"] = "completed" if conclusion else status
            if conclusion:
                body["conclusion"] = conclusion
                body["completed_at"] = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        payloads.append(body)
    return payloads


class Forge(Protocol):
    """What the bot asks of the forge. Repos are "owner/name"; errors raise :class:`ForgeError`."""

    def pull_request(self, repo: str, number: int) -> PullRequest: ...

    def changed_files(self, repo: str, number: int) -> list[ChangedFile]: ...

    def fetch(self, pr: PullRequest, cache_dir: Path) -> Path:
        """Fetch the PR's head and base into a bare repository under ``cache_dir`` (no checkout, no hooks:
        PR content is data); return its path. Raises :class:`HeadMissing` if ``pr.head_sha`` is not there."""

    def open_pull_requests_for(self, repo: str, sha: str) -> list[int]:
        """Numbers of the open pull requests whose head is ``sha`` (a fork's check re-run names none)."""

    def find_check_run(self, repo: str, sha: str, name: str, external_id: str) -> int:
        """The id of the check run ``name`` on ``sha`` we opened for ``external_id``; 0 if there is none."""

    def create_check_run(self, repo: str, sha: str, name: str, output: CheckOutput, external_id: str = "") -> int:
        """Open an in-progress check run on ``sha``; returns its id."""

    def update_check_run(self, repo: str, check_id: int, output: CheckOutput, status: str = "in_progress",
                         conclusion: str | None = None) -> None:
        """Write output (annotations in batches of 50); with ``conclusion`` the run completes."""

    def find_comment(self, repo: str, number: int, marker: str, author: str) -> Comment | None:
        """The first comment on the PR by ``author`` whose body starts with ``marker``."""

    def create_comment(self, repo: str, number: int, body: str) -> int: ...

    def edit_comment(self, repo: str, comment_id: int, body: str) -> None: ...

    def add_labels(self, repo: str, number: int, labels: Sequence[str]) -> None: ...

    def permission(self, repo: str, user: str) -> str:
        """admin | maintain | write | triage | read | none."""

    def is_team_member(self, org: str, team_slug: str, user: str) -> bool: ...

    def dispatch_workflow(self, repo: str, workflow: str, ref: str, inputs: Mapping[str, str]) -> None: ...
