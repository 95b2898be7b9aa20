"""The shapes of the webhook fields the bot reads, checked before routing: a signed but malformed payload
(a string where GitHub sends an object, a PR number of 2**70, ``true`` as a number) is answered 400 with
one log line, never a 500 with a traceback or a job such as ``#True``.

The rules follow the octokit webhook schemas for exactly the fields ``routing`` uses; everything else in
the payload is ignored, as GitHub adds fields over time.
"""

from __future__ import annotations

from typing import Any

MAX_ID = 2**53  # GitHub ids and numbers are JSON numbers that fit a double exactly (and SQLite's integers)


def _int(value: Any, where: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_ID:
        return f"{where} must be a positive integer below 2**53, got {str(value)[:40]!r}"
    return None


def _obj(value: Any, where: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    return None if isinstance(value, dict) else f"{where} must be an object"


def _str(value: Any, where: str, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    return None if isinstance(value, str) else f"{where} must be a string"


def _time(value: Any, where: str) -> str | None:
    return None if value is None or isinstance(value, str) else f"{where} must be an ISO 8601 string"


def problem(event: str, payload: dict[str, Any]) -> str | None:
    """The first field that does not have the shape the bot relies on, or ``None``."""
    checks: list[str | None] = [_obj(payload.get("repository"), "repository", optional=True),
                                _obj(payload.get("installation"), "installation", optional=True),
                                _str(payload.get("action"), "action")]
    repo = payload.get("repository")
    if isinstance(repo, dict):
        checks += [_str(repo.get("full_name"), "repository.full_name"),
                   _str(repo.get("default_branch"), "repository.default_branch")]
    inst = payload.get("installation")
    if isinstance(inst, dict):
        checks.append(_int(inst.get("id"), "installation.id", optional=True))
    if event == "pull_request":
        pr = payload.get("pull_request")
        checks.append(_obj(pr, "pull_request"))
        if isinstance(pr, dict):
            checks += [_int(pr.get("number"), "pull_request.number"), _obj(pr.get("head"), "pull_request.head"),
                       _obj(pr.get("base"), "pull_request.base", optional=True),
                       _time(pr.get("updated_at"), "pull_request.updated_at"),
                       _str(pr.get("merge_commit_sha"), "pull_request.merge_commit_sha")]
            if isinstance(pr.get("head"), dict):
                checks.append(_str(pr["head"].get("sha"), "pull_request.head.sha", optional=False))
    elif event == "issue_comment":
        issue, comment = payload.get("issue"), payload.get("comment")
        checks += [_obj(issue, "issue"), _obj(comment, "comment")]
        if isinstance(issue, dict):
            checks.append(_int(issue.get("number"), "issue.number"))
        if isinstance(comment, dict):
            checks += [_str(comment.get("body"), "comment.body"), _int(comment.get("id"), "comment.id"),
                       _obj(comment.get("user"), "comment.user"), _time(comment.get("created_at"),
                                                                         "comment.created_at")]
            if isinstance(comment.get("user"), dict):
                checks.append(_str(comment["user"].get("login"), "comment.user.login", optional=False))
    elif event in ("check_run", "check_suite"):
        check = payload.get(event)
        checks.append(_obj(check, event, optional=True))
        if isinstance(check, dict):
            checks.append(_str(check.get("head_sha"), f"{event}.head_sha"))
            prs = check.get("pull_requests")
            if prs is not None and not isinstance(prs, list):
                checks.append(f"{event}.pull_requests must be a list")
    return next((c for c in checks if c), None)
