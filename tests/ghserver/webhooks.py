"""Webhook deliveries built from GitHub's *recorded* payloads (`@octokit/webhooks-examples`).

Starting from a real payload and overwriting only what must match the server's state keeps every
field the bot might read (and that a hand-written dict would forget) where GitHub puts it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from typing import Any

from .npm import package_dir

Payload = dict[str, Any]


@functools.cache
def _examples() -> dict[str, list[Payload]]:
    path = package_dir("@octokit/webhooks-examples") / "api.github.com" / "index.json"
    with open(path, encoding="utf-8") as fh:
        return {entry["name"]: entry["examples"] for entry in json.load(fh)}


def example_events() -> dict[str, list[str | None]]:
    """Every recorded event name with the actions of its examples (`{"pull_request": ["opened", ...]}`)."""
    return {name: [e.get("action") for e in exs] for name, exs in _examples().items()}


def webhook_example(
    event: str, action: str | None = None, *, where: Callable[[Payload], bool] | None = None
) -> Payload:
    """A deep copy of the first recorded `event` payload with `action` (and matching `where`).

    e.g. ``webhook_example("issue_comment", "created", where=lambda p: "pull_request" in p["issue"])``.
    (The recordings have no merged `closed`: use :func:`rewrite_example` with `{"merged": True, ...}`.)
    """
    for example in _examples().get(event, []):
        if action in (None, example.get("action")) and (where is None or where(example)):
            return copy.deepcopy(example)
    raise KeyError(f"no recorded {event}.{action} example; have {example_events().get(event)}")


def _overlay(base: Any, new: Any) -> Any:
    """`new` wins, but keys only the recorded object has (webhook-only fields) are kept."""
    if isinstance(base, dict) and isinstance(new, dict):
        return {**base, **{k: _overlay(base.get(k), v) for k, v in new.items()}}
    return copy.deepcopy(new)


def rewrite_example(
    payload: Payload,
    *,
    repository: Payload | None = None,
    pull_request: Payload | None = None,
    issue: Payload | None = None,
    comment: Payload | None = None,
    check_run: Payload | None = None,
    sender: Payload | None = None,
    user: Payload | None = None,
    installation_id: int | None = None,
    number: int | None = None,
    head_sha: str | None = None,
    **extra: Any,
) -> Payload:
    """Point a recorded payload at our state: each given object is overlaid onto the recorded one.

    `user` overlays the PR/issue author; `number` sets the PR and issue number, `head_sha` the PR
    head; `extra` sets top-level keys verbatim (e.g. `before=..., after=...` for `synchronize`).
    """
    out = copy.deepcopy(payload)
    for key, value in (
        ("repository", repository),
        ("pull_request", pull_request),
        ("issue", issue),
        ("comment", comment),
        ("check_run", check_run),
        ("sender", sender),
    ):
        if value is not None:
            out[key] = _overlay(out.get(key), value)
    if user is not None:  # the PR/issue author (`sender` is who triggered the event)
        for key in ("pull_request", "issue"):
            if key in out:
                out[key]["user"] = _overlay(out[key].get("user"), user)
    if installation_id is not None:
        out["installation"] = {
            "id": installation_id,
            "node_id": f"MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{installation_id}",
        }
    if number is not None:
        if "number" in out:
            out["number"] = number
        for key in ("pull_request", "issue"):
            if key in out:
                out[key]["number"] = number
    if head_sha is not None and "pull_request" in out:
        out["pull_request"]["head"]["sha"] = head_sha
    out.update(extra)
    return out


def sign(secret: str | bytes, body: bytes) -> str:
    """`X-Hub-Signature-256` value: `sha256=` + hex HMAC-SHA256 of the raw body."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


def delivery(
    event: str,
    payload: Payload,
    secret: str | bytes,
    *,
    delivery_id: str | None = None,
    hook_id: int = 1,
    target_id: int | None = None,
) -> tuple[dict[str, str], bytes]:
    """(headers, body) exactly as GitHub would POST them to the app's webhook URL."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/labrador",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": str(hook_id),
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-GitHub-Hook-Installation-Target-ID": str(target_id or hook_id),
        "X-Hub-Signature": "sha1="
        + hmac.new(secret.encode() if isinstance(secret, str) else secret, body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": sign(secret, body),
    }
    return headers, body
