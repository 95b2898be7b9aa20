"""Plain records the fake GitHub keeps; tests read them directly instead of parsing HTTP."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .gitstore import GitStore

PERMISSIONS = ("admin", "maintain", "write", "triage", "read", "none")


@dataclass
class User:
    login: str
    id: int
    type: str = "User"  # "Bot" for the app's own `<slug>[bot]` account, "Organization" for orgs


@dataclass
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None
    default: bool = False


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    git: GitStore | None  # None for forks that only exist to be a PR's `head.repo`
    default_branch: str = "main"
    private: bool = False
    description: str | None = None
    fork_of: str | None = None
    created_at: float = field(default_factory=time.time)
    pushed_at: float = field(default_factory=time.time)
    labels: dict[str, Label] = field(default_factory=dict)
    permissions: dict[str, str] = field(default_factory=dict)  # login -> one of PERMISSIONS

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Pull:
    id: int
    number: int
    repo: str  # base repository full name
    head_repo: str
    user: str
    title: str
    body: str | None
    head_ref: str
    head_sha: str
    base_ref: str
    state: str = "open"
    draft: bool = False
    merged: bool = False
    merged_by: str | None = None
    merged_at: float | None = None
    merge_commit_sha: str | None = None
    closed_at: float | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    labels: list[str] = field(default_factory=list)
    head_history: list[str] = field(default_factory=list)  # every head SHA the PR had, oldest first


@dataclass
class Comment:
    id: int
    repo: str
    issue_number: int
    user: str
    body: str
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    edits: list[str] = field(default_factory=list)  # previous bodies, oldest first
    deleted: bool = False


@dataclass
class CheckRun:
    """A check run; `history` keeps every request body (create + each PATCH) in order."""

    id: int
    repo: str
    head_sha: str
    name: str
    suite_id: int
    status: str = "queued"
    conclusion: str | None = None
    started_at: float | None = None
    completed_at: float | None = None
    external_id: str | None = None
    details_url: str | None = None
    title: str | None = None
    summary: str | None = None
    text: str | None = None
    annotations: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Dispatch:
    """A recorded workflow_dispatch (`kind="workflow"`) or repository_dispatch (`kind="repository"`)."""

    repo: str
    kind: str
    workflow_id: str | None = None
    ref: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    event_type: str | None = None
    client_payload: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


@dataclass
class Token:
    token: str
    installation_id: int
    expires_at: float


@dataclass
class Installation:
    id: int
    account: str
    created_at: float = field(default_factory=time.time)


@dataclass
class Fault:
    """Misbehaviour for matching requests: wait `delay` s, then answer `status` (or serve normally
    when None, after applying `mutate` to the JSON body). Applies to the next `times` matches."""

    path: re.Pattern[str]
    method: str | None = None
    status: int | None = 500
    delay: float = 0.0
    times: int = 1
    body: Any = None
    mutate: Callable[[Any], Any] | None = None
    hits: int = 0
    headers: dict[str, str] | None = None  # sent with a `status` answer (rate-limit headers, say)


@dataclass
class LoggedRequest:
    method: str
    path: str
    status: int
    operation: str | None  # "METHOD /template" for API calls, None for git / unknown paths
    at: float = field(default_factory=time.time)
