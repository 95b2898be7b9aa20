"""Pull requests, their files and commits, issue comments and labels."""

from __future__ import annotations

import time
from typing import Any

from .framework import ApiError, Ctx, Reply, api, paginate
from .models import Comment, Pull, Repo
from .render import comment_json, file_json, issue_json, label_json, pull_json
from .render_core import iso

MAX_BODY = 65536  # GitHub rejects longer comment bodies with 422


def _pull(ctx: Ctx, key: str) -> tuple[Repo, Pull]:
    repo = ctx.repo()
    try:
        return repo, ctx.state.pulls[(repo.full_name, int(ctx.params[key]))]
    except (KeyError, ValueError):
        raise ApiError(404, "Not Found") from None


@api("GET", "/repos/{owner}/{repo}/pulls/{pull_number}")
def get_pull(ctx: Ctx) -> Reply:
    _, pr = _pull(ctx, "pull_number")
    return Reply(200, pull_json(ctx.state, pr, ctx.urls, ctx.media))


@api("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files")
def pull_files(ctx: Ctx) -> Reply:
    repo, pr = _pull(ctx, "pull_number")
    assert repo.git is not None
    base = repo.git.tip(f"refs/heads/{pr.base_ref}")
    if pr.merged and pr.merge_commit_sha:  # GitHub keeps listing what the PR changed, not "nothing" once the
        base = str(repo.git.commit_info(pr.merge_commit_sha).parent_ids[0])  # base has the merge: diff vs parent
    files = [file_json(repo, pr.head_sha, c, ctx.urls) for c in repo.git.changes(base, pr.head_sha)][:3000]
    page, headers = paginate(ctx, files)
    return Reply(200, page, headers)


@api("GET", "/repos/{owner}/{repo}/issues/{issue_number}")
def get_issue(ctx: Ctx) -> Reply:
    _, pr = _pull(ctx, "issue_number")
    return Reply(200, issue_json(ctx.state, pr, ctx.urls, ctx.media))


def _check_body(body: str) -> None:
    if len(body) > MAX_BODY:
        raise ApiError(
            422,
            "Validation Failed",
            [
                {
                    "resource": "IssueComment",
                    "code": "custom",
                    "field": "body",
                    "message": f"body is too long (maximum is {MAX_BODY} characters)",
                }
            ],
        )


@api("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
def list_comments(ctx: Ctx) -> Reply:
    repo, pr = _pull(ctx, "issue_number")
    since = ctx.query("since")
    items = [
        comment_json(ctx.state, c, ctx.urls, ctx.media)
        for c in sorted(ctx.state.comments_on(repo.full_name, pr.number), key=lambda c: c.id)
        if since is None or (iso(c.updated_at) or "") >= since
    ]
    page, headers = paginate(ctx, items)
    return Reply(200, page, headers)


@api("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
def create_comment(ctx: Ctx) -> Reply:
    repo, pr = _pull(ctx, "issue_number")
    _check_body(ctx.body["body"])
    c = Comment(ctx.state.next_id("comment"), repo.full_name, pr.number, ctx.actor().login, ctx.body["body"])
    ctx.state.comments[c.id] = c
    headers = {"Location": f"{ctx.urls.api}/repos/{repo.full_name}/issues/comments/{c.id}"}
    return Reply(201, comment_json(ctx.state, c, ctx.urls, ctx.media), headers)


def _comment(ctx: Ctx) -> Comment:
    repo = ctx.repo()
    c = ctx.state.comments.get(int(ctx.params["comment_id"]))
    if c is None or c.deleted or c.repo != repo.full_name:
        raise ApiError(404, "Not Found")
    return c


@api("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def get_comment(ctx: Ctx) -> Reply:
    return Reply(200, comment_json(ctx.state, _comment(ctx), ctx.urls, ctx.media))


@api("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def update_comment(ctx: Ctx) -> Reply:
    c = _comment(ctx)
    _check_body(ctx.body["body"])
    c.edits.append(c.body)
    c.body, c.updated_at = ctx.body["body"], time.time()
    return Reply(200, comment_json(ctx.state, c, ctx.urls, ctx.media))


@api("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def delete_comment(ctx: Ctx) -> Reply:
    _comment(ctx).deleted = True
    return Reply(204)


def _label_names(body: Any) -> list[str]:
    items = body if isinstance(body, list) else (body or {}).get("labels") or []
    return [i if isinstance(i, str) else i["name"] for i in items]


def _labels_reply(ctx: Ctx, repo: Repo, pr: Pull) -> Reply:
    return Reply(200, [label_json(repo.labels[n], repo, ctx.urls) for n in pr.labels])


@api("GET", "/repos/{owner}/{repo}/issues/{issue_number}/labels")
def issue_labels(ctx: Ctx) -> Reply:
    repo, pr = _pull(ctx, "issue_number")
    page, headers = paginate(ctx, _labels_reply(ctx, repo, pr).body)
    return Reply(200, page, headers)


@api("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels")
def add_labels(ctx: Ctx) -> Reply:
    """Unknown label names are created on the fly, as GitHub does."""
    repo, pr = _pull(ctx, "issue_number")
    for name in _label_names(ctx.body):
        label = ctx.state.ensure_label(repo.full_name, name)
        if label.name not in pr.labels:
            pr.labels.append(label.name)
    return _labels_reply(ctx, repo, pr)


@api("PUT", "/repos/{owner}/{repo}/issues/{issue_number}/labels")
def set_labels(ctx: Ctx) -> Reply:
    repo, pr = _pull(ctx, "issue_number")
    pr.labels = []
    return add_labels(ctx)


@api("DELETE", "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}")
def remove_label(ctx: Ctx) -> Reply:
    repo, pr = _pull(ctx, "issue_number")
    match = [n for n in pr.labels if n.lower() == ctx.params["name"].lower()]
    if not match:
        raise ApiError(404, "Label does not exist")
    pr.labels.remove(match[0])
    return _labels_reply(ctx, repo, pr)


@api("GET", "/repos/{owner}/{repo}/labels")
def repo_labels(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    page, headers = paginate(ctx, [label_json(lb, repo, ctx.urls) for lb in repo.labels.values()])
    return Reply(200, page, headers)


@api("POST", "/repos/{owner}/{repo}/labels")
def create_label(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    name = ctx.body["name"]
    if any(lb.lower() == name.lower() for lb in repo.labels):
        raise ApiError(422, "Validation Failed", [{"resource": "Label", "code": "already_exists", "field": "name"}])
    color = (ctx.body.get("color") or "ededed").removeprefix("#")
    label = ctx.state.ensure_label(repo.full_name, name, color, ctx.body.get("description"))
    return Reply(201, label_json(label, repo, ctx.urls))
