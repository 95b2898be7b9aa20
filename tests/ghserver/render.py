"""JSON for pull requests, files, commits, comments, labels and check runs, shaped like GitHub's."""

from __future__ import annotations

import html
from typing import Any

from .gitstore import FileChange
from .models import CheckRun, Comment, Label, Pull, Repo
from .render_core import Urls, iso, node_id, repo_json, user_json
from .state import State


def _body_media(body: str | None, media: str) -> dict[str, Any]:
    """`Accept: application/vnd.github.full+json` (github3's default) adds body_text/body_html."""
    out: dict[str, Any] = {"body": body}
    if "full" in media or "html" in media:
        out["body_html"] = f"<p>{html.escape(body or '')}</p>"
    if "full" in media or "text" in media:
        out["body_text"] = body or ""
    return out


def label_json(label: Label, repo: Repo, urls: Urls) -> dict[str, Any]:
    return {
        "id": label.id,
        "node_id": node_id("Label", label.id),
        "url": f"{urls.api}/repos/{repo.full_name}/labels/{label.name}",
        "name": label.name,
        "color": label.color,
        "description": label.description or "",  # the simple pull-request schema has no null here
        "default": label.default,
    }


def short_repo(state: State, full_name: str, urls: Urls) -> dict[str, Any]:
    repo = state.repos[full_name]
    return repo_json(repo, state.user(repo.owner), urls)


def pull_json(state: State, pr: Pull, urls: Urls, media: str = "") -> dict[str, Any]:
    """`pull-request` (GET /pulls/N); numbers (additions, commits, ...) come from the real git diff."""
    repo = state.repos[pr.repo]
    git = repo.git
    assert git is not None
    base_sha = git.tip(f"refs/heads/{pr.base_ref}") or pr.head_sha
    changes = git.changes(base_sha, pr.head_sha)
    api = f"{urls.api}/repos/{pr.repo}"
    html_url = f"{urls.web}/{pr.repo}/pull/{pr.number}"
    labels = [label_json(repo.labels[n], repo, urls) for n in pr.labels]
    links = {
        "self": f"{api}/pulls/{pr.number}",
        "html": html_url,
        "issue": f"{api}/issues/{pr.number}",
        "comments": f"{api}/issues/{pr.number}/comments",
        "review_comments": f"{api}/pulls/{pr.number}/comments",
        "review_comment": f"{api}/pulls/comments{{/number}}",
        "commits": f"{api}/pulls/{pr.number}/commits",
        "statuses": f"{api}/statuses/{pr.head_sha}",
    }
    head_owner = pr.head_repo.split("/")[0]
    return {
        "url": links["self"],
        "id": pr.id,
        "node_id": node_id("PullRequest", pr.id),
        "html_url": html_url,
        "diff_url": f"{html_url}.diff",
        "patch_url": f"{html_url}.patch",
        "issue_url": links["issue"],
        "commits_url": links["commits"],
        "review_comments_url": links["review_comments"],
        "review_comment_url": links["review_comment"],
        "comments_url": links["comments"],
        "statuses_url": links["statuses"],
        "number": pr.number,
        "state": pr.state,
        "locked": False,
        "title": pr.title,
        "user": user_json(state.user(pr.user), urls),
        **_body_media(pr.body, media),
        "labels": labels,
        "milestone": None,
        "active_lock_reason": None,
        "created_at": iso(pr.created_at),
        "updated_at": iso(pr.updated_at),
        "closed_at": iso(pr.closed_at),
        "merged_at": iso(pr.merged_at),
        "merge_commit_sha": pr.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": {
            "label": f"{head_owner}:{pr.head_ref}",
            "ref": pr.head_ref,
            "sha": pr.head_sha,
            "user": user_json(state.user(head_owner), urls),
            "repo": short_repo(state, pr.head_repo, urls),
        },
        "base": {
            "label": f"{repo.owner}:{pr.base_ref}",
            "ref": pr.base_ref,
            "sha": base_sha,
            "user": user_json(state.user(repo.owner), urls),
            "repo": short_repo(state, pr.repo, urls),
        },
        "_links": {k: {"href": v} for k, v in links.items()},
        "author_association": author_association(repo, pr.user),
        "auto_merge": None,
        "draft": pr.draft,
        "merged": pr.merged,
        "mergeable": None if pr.state == "closed" else True,
        "rebaseable": None if pr.state == "closed" else True,
        "mergeable_state": "unknown" if pr.state == "closed" else "clean",
        "merged_by": user_json(state.user(pr.merged_by), urls) if pr.merged_by else None,
        "comments": len(state.comments_on(pr.repo, pr.number)),
        "review_comments": 0,
        "maintainer_can_modify": pr.head_repo != pr.repo,
        "commits": git.commits_between(base_sha, pr.head_sha),
        "additions": sum(c.additions for c in changes),
        "deletions": sum(c.deletions for c in changes),
        "changed_files": len(changes),
    }


def author_association(repo: Repo, login: str) -> str:
    if login == repo.owner:
        return "OWNER"
    perm = repo.permissions.get(login, "none")
    return "COLLABORATOR" if perm not in ("none", "read") else "CONTRIBUTOR"


def issue_json(state: State, pr: Pull, urls: Urls, media: str = "") -> dict[str, Any]:
    """`issue` view of a PR (GitHub treats every PR as an issue; github3 labels go through it)."""
    repo = state.repos[pr.repo]
    api = f"{urls.api}/repos/{pr.repo}"
    return {
        "id": pr.id + 1,
        "node_id": node_id("Issue", pr.id + 1),
        "url": f"{api}/issues/{pr.number}",
        "repository_url": api,
        "labels_url": f"{api}/issues/{pr.number}/labels{{/name}}",
        "comments_url": f"{api}/issues/{pr.number}/comments",
        "events_url": f"{api}/issues/{pr.number}/events",
        "html_url": f"{urls.web}/{pr.repo}/pull/{pr.number}",
        "number": pr.number,
        "state": pr.state,
        "state_reason": None,
        "title": pr.title,
        **_body_media(pr.body, media),
        "user": user_json(state.user(pr.user), urls),
        "labels": [label_json(repo.labels[n], repo, urls) for n in pr.labels],
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "locked": False,
        "active_lock_reason": None,
        "comments": len(state.comments_on(pr.repo, pr.number)),
        "pull_request": {
            "url": f"{api}/pulls/{pr.number}",
            "html_url": f"{urls.web}/{pr.repo}/pull/{pr.number}",
            "diff_url": f"{urls.web}/{pr.repo}/pull/{pr.number}.diff",
            "patch_url": f"{urls.web}/{pr.repo}/pull/{pr.number}.patch",
            "merged_at": iso(pr.merged_at),
        },
        "closed_at": iso(pr.closed_at),
        "created_at": iso(pr.created_at),
        "updated_at": iso(pr.updated_at),
        "closed_by": None,
        "author_association": author_association(repo, pr.user),
        "reactions": _reactions(f"{api}/issues/{pr.number}/reactions"),
    }


def file_json(repo: Repo, sha: str, change: FileChange, urls: Urls) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sha": change.sha,
        "filename": change.filename,
        "status": change.status,
        "additions": change.additions,
        "deletions": change.deletions,
        "changes": change.additions + change.deletions,
        "blob_url": f"{urls.web}/{repo.full_name}/blob/{sha}/{change.filename}",
        "raw_url": f"{urls.web}/{repo.full_name}/raw/{sha}/{change.filename}",
        "contents_url": f"{urls.api}/repos/{repo.full_name}/contents/{change.filename}?ref={sha}",
    }
    if change.patch is not None:
        out["patch"] = change.patch
    if change.previous_filename:
        out["previous_filename"] = change.previous_filename
    return out


def comment_json(state: State, c: Comment, urls: Urls, media: str = "") -> dict[str, Any]:
    repo = state.repos[c.repo]
    api = f"{urls.api}/repos/{c.repo}"
    user = state.user(c.user)
    out = {
        "id": c.id,
        "node_id": node_id("IssueComment", c.id),
        "url": f"{api}/issues/comments/{c.id}",
        "html_url": f"{urls.web}/{c.repo}/pull/{c.issue_number}#issuecomment-{c.id}",
        "issue_url": f"{api}/issues/{c.issue_number}",
        "user": user_json(user, urls),
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        **_body_media(c.body, media),
        "author_association": "NONE" if user.type == "Bot" else author_association(repo, c.user),
        "performed_via_github_app": None,
        "reactions": _reactions(f"{api}/issues/comments/{c.id}/reactions"),
    }
    return out


def _reactions(url: str) -> dict[str, Any]:
    keys = ["+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket"]
    return {"url": url, "total_count": 0, **dict.fromkeys(keys, 0)}


def check_run_json(state: State, run: CheckRun, urls: Urls, app: dict[str, Any]) -> dict[str, Any]:
    api = f"{urls.api}/repos/{run.repo}"
    prs = [
        {
            "id": pr.id,
            "number": pr.number,
            "url": f"{api}/pulls/{pr.number}",
            "head": {"ref": pr.head_ref, "sha": pr.head_sha, "repo": _mini_repo(state, pr.head_repo, urls)},
            "base": {"ref": pr.base_ref, "sha": _tip(state, pr), "repo": _mini_repo(state, pr.repo, urls)},
        }
        for pr in state.pulls.values()
        # GitHub lists only pull requests whose head is in the same repository: never a fork's
        if pr.repo == run.repo and pr.head_repo == pr.repo and pr.state == "open" and pr.head_sha == run.head_sha
    ]
    return {
        "id": run.id,
        "node_id": node_id("CheckRun", run.id),
        "head_sha": run.head_sha,
        "external_id": run.external_id or "",
        "url": f"{api}/check-runs/{run.id}",
        "html_url": f"{urls.web}/{run.repo}/runs/{run.id}",
        "details_url": run.details_url or f"{urls.web}/{run.repo}/runs/{run.id}",
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": iso(run.started_at),
        "completed_at": iso(run.completed_at),
        "output": {
            "title": run.title,
            "summary": run.summary,
            "text": run.text,
            "annotations_count": len(run.annotations),
            "annotations_url": f"{api}/check-runs/{run.id}/annotations",
        },
        "name": run.name,
        "check_suite": {"id": run.suite_id},
        "app": app,
        "pull_requests": prs,
    }


def _tip(state: State, pr: Pull) -> str:
    git = state.repos[pr.repo].git
    return (git.tip(f"refs/heads/{pr.base_ref}") if git else None) or pr.head_sha


def _mini_repo(state: State, full_name: str, urls: Urls) -> dict[str, Any]:
    repo = state.repos[full_name]
    return {"id": repo.id, "url": f"{urls.api}/repos/{full_name}", "name": repo.name}


def annotation_json(run: CheckRun, note: dict[str, Any], urls: Urls) -> dict[str, Any]:
    return {
        "path": note["path"],
        "start_line": note["start_line"],
        "end_line": note["end_line"],
        "start_column": note.get("start_column"),
        "end_column": note.get("end_column"),
        "annotation_level": note["annotation_level"],
        "title": note.get("title"),
        "message": note["message"],
        "raw_details": note.get("raw_details"),
        "blob_href": f"{urls.web}/{run.repo}/blob/{run.head_sha}/{note['path']}",
    }
