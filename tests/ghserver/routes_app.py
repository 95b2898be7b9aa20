"""App authentication, repositories, permissions, teams and dispatches."""

from __future__ import annotations

from .framework import ApiError, Ctx, Reply, api
from .models import Dispatch
from .render_core import APP_PERMISSIONS, installation_json, iso, permission_flags, user_json


@api("GET", "/app", auth="app")
def get_app(ctx: Ctx) -> Reply:
    return Reply(200, ctx.app())


@api("POST", "/app/installations/{installation_id}/access_tokens", auth="app")
def create_token(ctx: Ctx) -> Reply:
    inst = ctx.state.installation_by_id(int(ctx.params["installation_id"]))
    if inst is None:
        raise ApiError(404, "Not Found")
    tok = ctx.state.mint_token(inst.id)
    body = {"token": tok.token, "expires_at": iso(tok.expires_at)}
    return Reply(201, body | {"permissions": dict(APP_PERMISSIONS), "repository_selection": "all"})


def _installation_reply(ctx: Ctx, account: str) -> Reply:
    inst = ctx.state.installations.get(account)
    if inst is None:
        raise ApiError(404, "Not Found")
    b = ctx.backend
    return Reply(200, installation_json(inst, ctx.state.user(account), b.app_id, b.app_slug, ctx.urls))


@api("GET", "/repos/{owner}/{repo}/installation", auth="app")
def repo_installation(ctx: Ctx) -> Reply:
    return _installation_reply(ctx, ctx.repo().owner)


@api("GET", "/orgs/{org}/installation", auth="app")
def org_installation(ctx: Ctx) -> Reply:
    return _installation_reply(ctx, ctx.params["org"])


@api("GET", "/users/{username}/installation", auth="app")
def user_installation(ctx: Ctx) -> Reply:
    return _installation_reply(ctx, ctx.params["username"])


def effective_permission(ctx: Ctx, login: str) -> str | None:
    """admin/maintain/write/triage/read/none for a known account, None if no such user."""
    repo = ctx.repo()
    if login == repo.owner:
        return "admin"
    if login in repo.permissions:
        return repo.permissions[login]
    if login not in ctx.state.users:
        return None
    return "none" if repo.private else "read"


@api("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission")
def collaborator_permission(ctx: Ctx) -> Reply:
    login = ctx.params["username"]
    role = effective_permission(ctx, login)
    if role is None:
        raise ApiError(404, "Not Found")
    # GitHub folds the fine-grained roles into the legacy trio in `permission`; `role_name` keeps them
    legacy = {"maintain": "write", "triage": "read"}.get(role, role)
    user = user_json(ctx.state.user(login), ctx.urls)
    user |= {"permissions": permission_flags(role), "role_name": role}
    return Reply(200, {"permission": legacy, "role_name": role, "user": user})


@api("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}")
def team_membership(ctx: Ctx) -> Reply:
    org, slug, login = ctx.params["org"], ctx.params["team_slug"], ctx.params["username"]
    if ctx.installation is None or ctx.installation.account != org:
        raise ApiError(404, "Not Found")
    role = ctx.state.teams.get((org, slug), {}).get(login)
    if role is None:
        raise ApiError(404, "Not Found")
    url = f"{ctx.urls.api}/teams/{abs(hash((org, slug))) % 10**7}/memberships/{login}"
    return Reply(200, {"url": url, "role": role, "state": "active"})


@api("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches")
def workflow_dispatch(ctx: Ctx) -> Reply:
    """Like GitHub: the workflow file must exist on the default branch and allow workflow_dispatch."""
    repo = ctx.repo()
    assert repo.git is not None
    wf, body = ctx.params["workflow_id"], ctx.body or {}
    default_tip = repo.git.tip(f"refs/heads/{repo.default_branch}")
    assert default_tip is not None
    content = None if wf.isdigit() else repo.git.read(default_tip, f".github/workflows/{wf}")
    if content is None:
        raise ApiError(404, "Not Found")
    if b"workflow_dispatch" not in content:
        raise ApiError(422, "Workflow does not have 'workflow_dispatch' trigger")
    if repo.git.resolve(body["ref"]) is None:
        raise ApiError(422, f"No ref found for: {body['ref']}")
    ctx.state.dispatches.append(
        Dispatch(repo.full_name, "workflow", workflow_id=wf, ref=body["ref"], inputs=dict(body.get("inputs") or {}))
    )
    if body.get("return_run_details"):
        run_id = ctx.state.next_id("workflow_run")
        api_url = f"{ctx.urls.api}/repos/{repo.full_name}/actions/runs/{run_id}"
        html = f"{ctx.urls.web}/{repo.full_name}/actions/runs/{run_id}"
        return Reply(200, {"workflow_run_id": run_id, "run_url": api_url, "html_url": html})
    return Reply(204)


@api("POST", "/repos/{owner}/{repo}/dispatches")
def repository_dispatch(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    body = ctx.body or {}
    ctx.state.dispatches.append(
        Dispatch(
            repo.full_name,
            "repository",
            event_type=body["event_type"],
            client_payload=dict(body.get("client_payload") or {}),
        )
    )
    return Reply(204)
