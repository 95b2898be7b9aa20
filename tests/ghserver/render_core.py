"""JSON for accounts, repositories, the app and installations, shaped like GitHub's.

Every URL is built from the server's own base URLs (`Urls`), so a client that follows links
(github3 does: `pr.files()` uses the PR's `url`) keeps talking to the test server.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

from .models import Installation, Repo, User

APP_PERMISSIONS = {
    "checks": "write",
    "contents": "read",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
    "actions": "write",
    "members": "read",
}
APP_EVENTS = ["check_run", "issue_comment", "pull_request", "push"]


@dataclass(frozen=True)
class Urls:
    """`api`: REST root (maybe with `/api/v3`); `web`: html/git root (no `/api/v3`)."""

    api: str
    web: str


def iso(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def node_id(kind: str, ident: int) -> str:
    """Legacy global relay id (`base64("<len>:<Kind><id>")`), what GitHub still returns as node_id."""
    raw = f"{kind}{ident}"
    return base64.b64encode(f"{len(kind):02d}:{raw}".encode()).decode()


def user_json(u: User, urls: Urls) -> dict[str, Any]:
    api = f"{urls.api}/users/{u.login}"
    return {
        "login": u.login,
        "id": u.id,
        "node_id": node_id(u.type, u.id),
        "avatar_url": f"{urls.web}/avatars/u/{u.id}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{urls.web}/apps/{u.login.removesuffix('[bot]')}" if u.type == "Bot" else f"{urls.web}/{u.login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": u.type,
        "user_view_type": "public",
        "site_admin": False,
    }


_REPO_URLS = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


def repo_json(repo: Repo, owner: User, urls: Urls, *, full: bool = False, perms: str | None = None) -> dict[str, Any]:
    """`repository` (in PRs, webhooks) or, with `full`, `full-repository` (GET /repos/o/r)."""
    api = f"{urls.api}/repos/{repo.full_name}"
    host = urls.web.split("://", 1)[1]
    out: dict[str, Any] = {
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
        "owner": user_json(owner, urls),
        "html_url": f"{urls.web}/{repo.full_name}",
        "description": repo.description,
        "fork": repo.fork_of is not None,
        "url": api,
        **{k: api + v for k, v in _REPO_URLS.items()},
        "git_url": f"git://{host}/{repo.full_name}.git",
        "ssh_url": f"git@{host.split(':')[0]}:{repo.full_name}.git",
        "clone_url": f"{urls.web}/{repo.full_name}.git",
        "svn_url": f"{urls.web}/{repo.full_name}",
        "mirror_url": None,
        "homepage": None,
        "language": None,
        "forks_count": 0,
        "forks": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "watchers": 0,
        "size": 1,
        "default_branch": repo.default_branch,
        "open_issues_count": 0,
        "open_issues": 0,
        "is_template": False,
        "topics": [],
        "has_issues": True,
        "has_projects": False,
        "has_wiki": False,
        "has_pages": False,
        "has_downloads": True,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "visibility": "private" if repo.private else "public",
        "pushed_at": iso(repo.pushed_at),
        "created_at": iso(repo.created_at),
        "updated_at": iso(repo.pushed_at),
        "license": None,
        "allow_forking": True,
        "web_commit_signoff_required": False,
    }
    if perms is not None:
        out["permissions"] = permission_flags(perms)
    if full:
        out |= {"network_count": 0, "subscribers_count": 0, "temp_clone_token": None}
        out |= {"allow_squash_merge": True, "allow_merge_commit": True, "allow_rebase_merge": True}
        out |= {"allow_auto_merge": False, "delete_branch_on_merge": False}
    return out


def permission_flags(permission: str) -> dict[str, bool]:
    order = ["read", "triage", "write", "maintain", "admin"]
    rank = order.index(permission) if permission in order else -1
    return {"pull": rank >= 0, "triage": rank >= 1, "push": rank >= 2, "maintain": rank >= 3, "admin": rank >= 4}


def app_json(app_id: int, slug: str, owner: User, urls: Urls, created: float) -> dict[str, Any]:
    return {
        "id": app_id,
        "slug": slug,
        "node_id": node_id("App", app_id),
        "client_id": f"Iv1.{app_id:016x}",
        "owner": user_json(owner, urls),
        "name": slug.replace("-", " ").title(),
        "description": "Labrador test app",
        "external_url": f"{urls.web}/{slug}",
        "html_url": f"{urls.web}/apps/{slug}",
        "created_at": iso(created),
        "updated_at": iso(created),
        "permissions": dict(APP_PERMISSIONS),
        "events": list(APP_EVENTS),
        "installations_count": 1,
    }


def installation_json(inst: Installation, account: User, app_id: int, slug: str, urls: Urls) -> dict[str, Any]:
    return {
        "id": inst.id,
        "account": user_json(account, urls),
        "repository_selection": "all",
        "access_tokens_url": f"{urls.api}/app/installations/{inst.id}/access_tokens",
        "repositories_url": f"{urls.api}/installation/repositories",
        "html_url": f"{urls.web}/settings/installations/{inst.id}",
        "app_id": app_id,
        "app_slug": slug,
        "client_id": f"Iv1.{app_id:016x}",
        "target_id": account.id,
        "target_type": account.type if account.type != "Bot" else "User",
        "permissions": dict(APP_PERMISSIONS),
        "events": list(APP_EVENTS),
        "created_at": iso(inst.created_at),
        "updated_at": iso(inst.created_at),
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": None,
        "suspended_at": None,
    }
