"""Webhook events to jobs: pure functions of (event name, payload, known heads), no I/O.

Why pure: the webhook must answer in milliseconds and every routing rule (which actions count, which
comments are commands, which head a command binds to) is testable without a server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .jobs import HELP, MERGED, PREVIEW, RETRY, VALIDATE, Job

PR_ACTIONS = ("opened", "synchronize", "reopened")
COMMANDS = {"preview": PREVIEW, "retry": RETRY, "help": HELP}
# up to 3 spaces before it: a line indented by 4 or more (or a tab) is an indented code block, or text in a list
_COMMAND = re.compile(r" {0,3}/lab(?:[ \t]+(\S+))?[ \t]*", re.IGNORECASE)
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")  # a code fence opens (CommonMark: up to 3 spaces of indent)
_QUOTE = re.compile(r" {0,3}>")  # a block quote line
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")  # `<!--` in an inline code span opens no comment
_SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")

HeadLookup = Callable[[str, int, float], str]  # (repo, pr, comment time) -> bound head sha or ""


@dataclass
class Routed:
    """What to do with one delivery: jobs to queue, a head to remember, and a short reason for the reply."""

    jobs: list[Job] = field(default_factory=list)
    head: tuple[str, int, str, float] | None = None  # (repo, pr, sha, when) to remember before queueing
    reason: str = ""


UNREADABLE_TIME = -1.0  # a command's said_at when its comment's created_at could not be read


def parse_time(value: Any) -> float | None:
    """GitHub's ISO 8601 timestamps (``2024-05-01T12:00:00Z``) as epoch seconds."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


_PRE_OPEN = re.compile(r"<\s*(pre|code)\b[^>]*>", re.IGNORECASE)
_PRE_CLOSE = re.compile(r"<\s*/\s*(pre|code)\s*>", re.IGNORECASE)


def live_lines(body: str) -> list[str]:
    """The lines of a comment that GitHub shows as text: not in a fenced code block (````` or ``~~~``, to its
    closing fence or the end), nor in a block quote (``>`` lines and the lines that lazily continue them), nor
    touched by an HTML comment (``<!--`` to ``-->`` or the end, over any number of lines; the whole line of
    each end counts as hidden, to be safe), nor inside an HTML ``<pre>`` or ``<code>`` block (its lines and
    those of its tags).

    A quoted, fenced or hidden ``/lab`` is someone citing a command (a reply, the docs, a PR template's
    instructions), never one to run.
    """
    live: list[str] = []
    fence = ""  # the open fence's run of ` or ~; a closing fence is a run at least as long, alone on its line
    quoted = False  # the previous line was quoted text: a non-blank line right after continues the quote
    comment = False  # inside an HTML comment, until a line with -->
    pre = False  # inside an HTML <pre> (or <code>) block, until its closing tag
    for line in body.split("\n"):
        line = line.removesuffix("\r")  # comments typed on github.com end lines with CRLF
        if pre or _PRE_OPEN.search(line):  # preformatted HTML shows text, never a command
            pre = not _PRE_CLOSE.search(line.split(">", 1)[1] if not pre and ">" in line else line)
            continue
        if fence:
            if _closes(line, fence):
                fence = ""
            continue
        if comment or "<!--" in _CODE_SPAN.sub("", line):
            comment = _in_comment_after(line, comment)
            quoted = False
            continue
        opened = _FENCE.fullmatch(line)
        if opened and not (opened.group(1)[0] == "`" and "`" in opened.group(2)):
            fence, quoted = opened.group(1), False
        elif _QUOTE.match(line):
            quoted = True
        elif not line.strip():
            quoted = False
        elif not quoted:
            live.append(line)
    return live


def _in_comment_after(line: str, comment: bool) -> bool:
    """Whether an HTML comment is still open at the end of ``line`` (``comment``: open at its start)."""
    text = line if comment else _CODE_SPAN.sub("", line)
    pos = 0
    while True:
        if not comment:
            start = text.find("<!--", pos)
            if start < 0:
                return False
            pos, comment = start + 2, True  # (``<!-->`` and ``<!--->`` are whole comments)
        end = text.find("-->", pos)
        if end < 0:
            return True
        pos, comment = end + 3, False


def _closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a code block opened by ``fence``: the same character, at least as many."""
    text = line.lstrip(" ")
    run = text.rstrip(" \t")
    return len(line) - len(text) <= 3 and len(run) >= len(fence) and set(run) == {fence[0]}


def parse_command(body: str) -> tuple[str, str] | None:
    """The first ``/lab <word>`` line of a comment as (kind, line); lines in code blocks (fenced, or indented
    by 4+ spaces or a tab), block quotes and HTML comments don't count."""
    for line in live_lines(body or ""):
        match = _COMMAND.fullmatch(line)
        if match is not None:
            word = (match.group(1) or "help").lower()
            return COMMANDS.get(word, HELP), line.strip()[:100]
    return None


def _is_sha(value: Any) -> bool:
    return isinstance(value, str) and bool(_SHA.match(value))


def route(event: str, payload: dict[str, Any], head_at: HeadLookup, delivery: str = "") -> Routed:
    """Jobs for one verified webhook delivery."""
    repo = (payload.get("repository") or {}).get("full_name")
    installation = int((payload.get("installation") or {}).get("id") or 0)
    if event == "ping":
        return Routed(reason="pong")
    if not isinstance(repo, str) or repo.count("/") != 1:
        return Routed(reason="ignored: no repository")
    if event == "pull_request":
        return _pull_request(payload, repo, installation, delivery)
    if event == "issue_comment":
        return _comment(payload, repo, installation, delivery, head_at)
    if event in ("check_run", "check_suite") and payload.get("action") == "rerequested":
        return _rerun(payload.get(event) or {}, repo, installation, delivery)
    return Routed(reason=f"ignored: event {event}")


def _rerun(check: dict[str, Any], repo: str, installation: int, delivery: str) -> Routed:
    """"Re-run" in GitHub's checks UI (only people with write access see it): validate that head again."""
    sha = check.get("head_sha")
    numbers = [p.get("number") for p in check.get("pull_requests") or [] if isinstance(p, dict)]
    if not _is_sha(sha):
        return Routed(reason="ignored: malformed check event")
    jobs = [Job(VALIDATE, repo, n, sha, installation, delivery=delivery) for n in numbers if isinstance(n, int)]
    if not numbers:  # GitHub leaves pull_requests empty for a fork's head: the worker finds the PR by its SHA
        jobs = [Job(VALIDATE, repo, 0, sha, installation, delivery=delivery)]
    return Routed(jobs)


def _pull_request(payload: dict[str, Any], repo: str, installation: int, delivery: str) -> Routed:
    action = payload.get("action")
    pr = payload.get("pull_request") or {}
    number = pr.get("number") or payload.get("number")
    head = (pr.get("head") or {}).get("sha")
    if not isinstance(number, int) or not _is_sha(head):
        return Routed(reason="ignored: malformed pull_request")
    if action in PR_ACTIONS:
        when = parse_time(pr.get("updated_at")) or 0.0
        job = Job(VALIDATE, repo, number, head, installation, delivery=delivery)
        return Routed([job], head=(repo, number, head, when))
    if action == "closed" and pr.get("merged"):
        base = (pr.get("base") or {}).get("ref")
        default = (payload.get("repository") or {}).get("default_branch")
        merge_sha = pr.get("merge_commit_sha")
        if base != default or not _is_sha(merge_sha):
            return Routed(reason="ignored: merged into another branch")
        return Routed([Job(MERGED, repo, number, merge_sha, installation, delivery=delivery)])
    return Routed(reason=f"ignored: pull_request {action}")


def _comment(payload: dict[str, Any], repo: str, installation: int, delivery: str, head_at: HeadLookup) -> Routed:
    if payload.get("action") != "created":
        return Routed(reason="ignored: comment not created")
    issue = payload.get("issue") or {}
    comment = payload.get("comment") or {}
    user = comment.get("user") or {}
    if not issue.get("pull_request"):
        return Routed(reason="ignored: not a pull request")
    if user.get("type") == "Bot":
        return Routed(reason="ignored: comment by a bot")
    parsed = parse_command(comment.get("body") or "")
    number, login = issue.get("number"), user.get("login")
    if parsed is None or not isinstance(number, int) or not isinstance(login, str):
        return Routed(reason="ignored: no command")
    kind, line = parsed
    sha = ""
    when = parse_time(comment.get("created_at"))
    if kind != HELP:
        sha = head_at(repo, number, when) if when is not None else ""
    said_at = UNREADABLE_TIME if when is None else when  # the worker answers that it could not read the time
    job = Job(kind, repo, number, sha, installation, comment_id=int(comment.get("id") or 0), requester=login,
              command=line, delivery=delivery, said_at=said_at)
    return Routed([job])
