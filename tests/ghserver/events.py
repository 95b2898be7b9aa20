"""Webhook payloads for the server's current state: recorded example + our rendered objects.

Each payload is validated against the webhook schema in GitHub's OpenAPI (`x-webhooks`), so what
the bot's handler receives in tests is what GitHub documents, not what we guessed.
"""

from __future__ import annotations

from typing import Any

from .framework import Backend
from .models import CheckRun, Comment
from .render import check_run_json, comment_json, issue_json, pull_json
from .render_core import Urls, app_json, repo_json, user_json
from .webhooks import Payload, rewrite_example, webhook_example


def _common(backend: Backend, urls: Urls, full_name: str, sender: str) -> dict[str, Any]:
    state = backend.state
    repo = state.repos[full_name]
    return {
        "repository": repo_json(repo, state.user(repo.owner), urls),
        "sender": user_json(state.user(sender), urls),
        "installation_id": state.installation(repo.owner).id,
    }


def pull_request_event(
    backend: Backend,
    urls: Urls,
    full_name: str,
    number: int,
    action: str,
    *,
    sender: str | None = None,
    before: str | None = None,
) -> Payload:
    """`pull_request` webhook; `synchronize` gets `before` (default: previous head) and `after`."""
    state = backend.state
    with state.lock:
        pr = state.pulls[(full_name, number)]
        example = webhook_example("pull_request", action)  # (no recorded *merged* close: overlay sets it)
        extra: dict[str, Any] = {}
        if action == "synchronize":
            prev = pr.head_history[-2] if len(pr.head_history) > 1 else pr.head_sha
            extra = {"before": before or prev, "after": pr.head_sha}
        payload = rewrite_example(
            example,
            pull_request=pull_json(state, pr, urls),
            number=number,
            **_common(
                backend, urls, full_name, sender or (pr.merged_by if action == "closed" and pr.merged else pr.user)
            ),
            **extra,
        )
    backend.spec.validate_webhook("pull_request", action, payload)
    return payload


def issue_comment_event(
    backend: Backend, urls: Urls, comment: Comment, action: str = "created", *, sender: str | None = None
) -> Payload:
    """`issue_comment` webhook for a comment on a PR (the issue carries `pull_request`)."""
    state = backend.state
    with state.lock:
        pr = state.pulls[(comment.repo, comment.issue_number)]
        extra: dict[str, Any] = {}
        if action == "edited":
            extra["changes"] = {"body": {"from": comment.edits[-1] if comment.edits else comment.body}}
        payload = rewrite_example(
            webhook_example("issue_comment", action),
            issue=issue_json(state, pr, urls),
            comment=comment_json(state, comment, urls),
            **_common(backend, urls, comment.repo, sender or comment.user),
            **extra,
        )
    backend.spec.validate_webhook("issue_comment", action, payload)
    return payload


def check_run_event(
    backend: Backend, urls: Urls, run: CheckRun, action: str = "rerequested", *, sender: str = "maintainer"
) -> Payload:
    """`check_run` webhook (e.g. the user pressed "Re-run" → `rerequested`)."""
    state = backend.state
    with state.lock:
        app = app_json(backend.app_id, backend.app_slug, state.user(backend.app_owner), urls, backend.created_at)
        body = check_run_json(state, run, urls, app)
        example = webhook_example("check_run", action)
        body["check_suite"] = {
            **example["check_run"]["check_suite"],
            "id": run.suite_id,
            "head_sha": run.head_sha,
            "app": app,
            "pull_requests": body["pull_requests"],
        }
        payload = rewrite_example(example, check_run=body, **_common(backend, urls, run.repo, sender))
    backend.spec.validate_webhook("check_run", action, payload)
    return payload
