"""Repository metadata, commits, file contents and the pull request list."""

from __future__ import annotations

import base64
from typing import Any

import pygit2

from .framework import ApiError, Ctx, Reply, api, paginate
from .models import Repo
from .render import file_json, pull_json
from .render_core import Urls, iso, repo_json


def _ref(repo: Repo, value: str | None) -> str:
    assert repo.git is not None
    sha = repo.git.resolve(value or repo.default_branch)
    if sha is None:
        raise ApiError(404, f"No commit found for the ref {value}")
    return sha


@api("GET", "/repos/{owner}/{repo}")
def get_repo(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    body = repo_json(repo, ctx.state.user(repo.owner), ctx.urls, full=True, perms="write")
    body["forks"] = body["forks_count"] = sum(1 for r in ctx.state.repos.values() if r.fork_of == repo.full_name)
    return Reply(200, body)


@api("GET", "/repos/{owner}/{repo}/pulls")
def list_pulls(ctx: Ctx) -> Reply:
    """Newest first, filtered by `state` (default open), `head` (`user:ref`) and `base` like GitHub."""
    repo = ctx.repo()
    want, head, base = ctx.query("state", "open"), ctx.query("head"), ctx.query("base")
    pulls = [
        p
        for p in sorted(ctx.state.pulls.values(), key=lambda p: -p.number)
        if p.repo == repo.full_name
        and want in ("all", p.state)
        and head in (None, f"{p.head_repo.split('/')[0]}:{p.head_ref}")
        and base in (None, p.base_ref)
    ]
    page, headers = paginate(ctx, pulls)
    return Reply(200, [pull_json(ctx.state, p, ctx.urls, ctx.media) for p in page], headers)


@api("GET", "/repos/{owner}/{repo}/contents/{path}", route="/repos/{owner}/{repo}/contents/{path:path}")
def get_contents(ctx: Ctx) -> Reply:
    """A file (base64, like GitHub's JSON media type) or a directory listing at `ref`."""
    repo = ctx.repo()
    assert repo.git is not None
    sha = _ref(repo, ctx.query("ref"))
    path = ctx.params["path"].strip("/")
    obj = repo.git.lookup(sha, path)
    if obj is None:
        raise ApiError(404, "Not Found")
    if isinstance(obj, pygit2.Tree):
        entries = [_content(ctx.urls, repo, sha, f"{path}/{e.name}".lstrip("/"), repo.git.repo[e.id]) for e in obj]
        return Reply(200, entries)
    return Reply(200, _content(ctx.urls, repo, sha, path, obj, with_data=True))


def _content(urls: Urls, repo: Repo, ref: str, path: str, obj: Any, with_data: bool = False) -> dict[str, Any]:
    is_dir = isinstance(obj, pygit2.Tree)
    api = f"{urls.api}/repos/{repo.full_name}"
    kind = "tree" if is_dir else "blob"
    out: dict[str, Any] = {
        "type": "dir" if is_dir else "file",
        "size": 0 if is_dir else obj.size,
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": str(obj.id),
        "url": f"{api}/contents/{path}?ref={ref}",
        "git_url": f"{api}/git/{kind}s/{obj.id}",
        "html_url": f"{urls.web}/{repo.full_name}/{kind}/{ref}/{path}",
        "download_url": None if is_dir else f"{urls.web}/{repo.full_name}/raw/{ref}/{path}",
    }
    out["_links"] = {"self": out["url"], "git": out["git_url"], "html": out["html_url"]}
    if with_data:
        raw = base64.encodebytes(obj.data).decode()
        out |= {"content": raw, "encoding": "base64"}
    return out


@api("GET", "/repos/{owner}/{repo}/commits/{ref}")
def get_commit(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    assert repo.git is not None
    sha = repo.git.resolve(ctx.params["ref"])
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {ctx.params['ref']}")
    return Reply(200, commit_json(repo, sha, ctx.urls))


def commit_json(repo: Repo, sha: str, urls: Urls) -> dict[str, Any]:
    assert repo.git is not None
    c = repo.git.commit_info(sha)
    api = f"{urls.api}/repos/{repo.full_name}"
    parent = str(c.parent_ids[0]) if c.parent_ids else None
    changes = repo.git.changes(parent, sha)

    def person(sig: Any) -> dict[str, str]:
        return {"name": sig.name, "email": sig.email, "date": iso(sig.time) or ""}

    return {
        "url": f"{api}/commits/{sha}",
        "sha": sha,
        "node_id": f"C_{sha[:20]}",
        "html_url": f"{urls.web}/{repo.full_name}/commit/{sha}",
        "comments_url": f"{api}/commits/{sha}/comments",
        "commit": {
            "url": f"{api}/git/commits/{sha}",
            "author": person(c.author),
            "committer": person(c.committer),
            "message": c.message,
            "comment_count": 0,
            "tree": {"sha": str(c.tree_id), "url": f"{api}/git/trees/{c.tree_id}"},
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "payload": None,
                "signature": None,
                "verified_at": None,
            },
        },
        "author": None,
        "committer": None,
        "parents": [
            {"sha": str(p), "url": f"{api}/commits/{p}", "html_url": f"{urls.web}/{repo.full_name}/commit/{p}"}
            for p in c.parent_ids
        ],
        "stats": {
            "additions": sum(f.additions for f in changes),
            "deletions": sum(f.deletions for f in changes),
            "total": sum(f.additions + f.deletions for f in changes),
        },
        "files": [file_json(repo, sha, f, urls) for f in changes],
    }
