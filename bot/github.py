"""``GitHubForge``: the :class:`~labrador.bot.forge.Forge` protocol on GitHub (or GitHub Enterprise) with github3.py.

Authenticates as a GitHub App installation (``appauth``); the token is refreshed before expiry and given to
git only through pygit2's credentials callback. Endpoints github3.py lacks (permission level, team
membership, workflow dispatch, check-run PATCH without an extra GET) go through its session, so base URL,
auth and error handling are the same everywhere.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import github3

from labrador.validators.gitfetch import current_budget

from . import gitcache
from .appauth import InstallationTokens
from .config import GITHUB_API, BotSettings, Secret
from .forge import ChangedFile, CheckOutput, Comment, ForgeError, PullRequest, RateLimited, check_payloads
from .routing import parse_time

ROLES = ("admin", "maintain", "write", "triage", "read")
SECONDARY_WAIT_S = 60.0  # GitHub's advice for a secondary limit that names no time: wait at least a minute


def rate_limit_wait(status: int, headers: Mapping[str, str], body: str, now: float) -> float | None:
    """Seconds to wait before asking again, when a response is GitHub's rate limit; None otherwise.

    ``Retry-After`` first (secondary limits, 429), then ``X-RateLimit-Remaining: 0`` with ``X-RateLimit-Reset``
    (the primary limit), then a 403/429 whose message names a secondary limit without a time (a minute)."""
    if status not in (403, 429):
        return None
    retry_after = str(headers.get("retry-after") or "").strip()
    if retry_after.isdigit():
        return float(retry_after)
    reset = str(headers.get("x-ratelimit-reset") or "").strip()
    if str(headers.get("x-ratelimit-remaining") or "").strip() == "0" and reset.isdigit():
        return max(0.0, float(reset) - now) + 1.0
    if status == 429 or "rate limit" in body[:2000].lower():
        return SECONDARY_WAIT_S
    return None


def _parts(repo: str) -> tuple[str, str]:
    owner, _, name = repo.partition("/")
    if not owner or not name or "/" in name:
        raise ForgeError(f"not an owner/name repository: {repo[:100]!r}")
    return owner, name


log = logging.getLogger("labrador.bot.github")


class GitHubForge:
    """One client per job (cheap); tokens are shared through ``tokens``."""

    def __init__(self, settings: BotSettings, tokens: InstallationTokens, installation_id: int = 0) -> None:
        self.settings = settings
        self.tokens = tokens
        self.installation_id = installation_id or settings.installation_id
        self.api = settings.api_url.rstrip("/")
        if self.api == GITHUB_API:
            self.gh = github3.GitHub()
        else:
            self.gh = github3.GitHubEnterprise(self.api.removesuffix("/api/v3"))
        self.gh.session.base_url = self.api  # exactly the configured REST root (GHE or a test server)
        self.gh.session.hooks["response"].append(self._on_response)
        self._token_value = ""

    def scrub(self, text: str) -> str:
        """``text`` without the token this client sent (an error may echo a request or its headers back)."""
        return text.replace(self._token_value, "***") if self._token_value else text

    def _on_response(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        """Every GitHub answer passes here: a rate limit is waited out (once per request, never past the end
        of the running job's budget, and not at all once the job is stopped) and the request sent again; a
        longer one becomes :class:`RateLimited`."""
        wait = rate_limit_wait(response.status_code, response.headers, response.text, time.time())
        request = response.request
        if wait is None or getattr(request, "_labrador_waited", False):
            return response
        budget = current_budget()  # the job's (its time left and its stop switch); None outside a job
        allowed = self.settings.rate_limit_max_wait_s
        if budget is not None:
            allowed = min(allowed, budget.remaining())
        if wait > allowed:
            until = time.strftime("%H:%M:%S UTC", time.gmtime(time.time() + wait))
            raise RateLimited(f"GitHub's API rate limit for this app is used up until about {until} "
                              f"({wait:.0f} s, more than the {allowed:.0f} s this job may wait)")
        log.warning("GitHub rate limit (HTTP %d): waiting %.0f s before asking again", response.status_code, wait)
        if budget is not None and budget.cancelled.wait(wait):
            return response
        if budget is None:
            time.sleep(wait)
        request._labrador_waited = True
        return self.gh.session.send(request, **kwargs)

    # -- plumbing ------------------------------------------------------------------------------------------
    def _token(self, repo: str, org: str = "") -> Secret:
        if not self.installation_id:
            parts = ("orgs", org) if org else ("repos", *_parts(repo))
            where = "/".join(quote(p, safe="") for p in parts)
            self.installation_id = self.tokens.installation_for(where)
        token = self.tokens.token(self.installation_id)
        if token.value.reveal() != self._token_value:  # new or refreshed: hand it to the session
            self.gh.session.app_installation_token_auth({"token": token.value.reveal(),
                                                         "expires_at": token.expires_str})
            self._token_value = token.value.reveal()
        return token.value

    def _url(self, *parts: str | int) -> str:
        return self.gh._build_url(*(quote(str(p), safe="") for p in parts))

    def _call(self, repo: str, method: str, url: str, expect: int, body: Any = None) -> Any:
        for attempt in (1, 2):
            self._token(repo)
            if method == "post":
                response = self.gh._post(url, data=body)
            elif method == "patch":
                response = self.gh._patch(url, data=json.dumps(body))
            else:
                response = self.gh._get(url)
            if response is not None and response.status_code == 401 and attempt == 1 and self.installation_id:
                log.info("GitHub refused the installation token (401): fetching a new one and retrying once")
                self.tokens.drop(self.installation_id)
                self._token_value = ""
                continue
            break
        if expect == 204:
            return self.gh._boolean(response, 204, 404) or None
        return self.gh._json(response, expect)

    # -- reading -------------------------------------------------------------------------------------------
    def pull_request(self, repo: str, number: int) -> PullRequest:
        owner, name = _parts(repo)
        data = self._call(repo, "get", self._url("repos", owner, name, "pulls", number), 200)
        base, head = data.get("base") or {}, data.get("head") or {}
        base_repo = base.get("repo") or {}
        return PullRequest(repo=repo, number=int(data["number"]), state=str(data.get("state", "")),
                           head_sha=str(head.get("sha", "")), base_ref=str(base.get("ref", "")),
                           base_sha=str(base.get("sha", "")), default_branch=str(base_repo.get("default_branch", "")),
                           author=str((data.get("user") or {}).get("login", "")),
                           clone_url=str(base_repo.get("clone_url", "")), merged=bool(data.get("merged")),
                           merge_commit_sha=str(data.get("merge_commit_sha") or ""),
                           updated_at=parse_time(data.get("updated_at")) or 0.0)

    def changed_files(self, repo: str, number: int) -> list[ChangedFile]:
        owner, name = _parts(repo)
        self._token(repo)
        url = self._url("repos", owner, name, "pulls", number, "files")
        out = []
        for page in self.gh._iter(-1, url, dict):  # raw JSON items
            out.append(ChangedFile(str(page.get("filename", "")), str(page.get("status", "")),
                                   str(page.get("previous_filename") or "")))
        return out

    def fetch(self, pr: PullRequest, cache_dir: Path) -> Path:
        token = self._token(pr.repo)
        refspecs = gitcache.pr_refspecs(pr.number, pr.base_ref)
        return gitcache.fetch(cache_dir, pr.repo, pr.clone_url, refspecs, [pr.head_sha, pr.base_sha], token,
                              self.settings.fetch_max_bytes, self.settings.fetch_timeout_s)

    def open_pull_requests_for(self, repo: str, sha: str) -> list[int]:
        owner, name = _parts(repo)
        self._token(repo)
        return [int(p["number"]) for p in self.gh._iter(-1, self._url("repos", owner, name, "pulls"), dict,
                                                         params={"state": "open", "per_page": "100"})
                if str((p.get("head") or {}).get("sha", "")) == sha]

    def find_check_run(self, repo: str, sha: str, name: str, external_id: str) -> int:
        owner, run = _parts(repo)
        self._token(repo)
        url = self._url("repos", owner, run, "commits", sha, "check-runs")
        for item in self.gh._iter(-1, url, dict, params={"check_name": name, "filter": "all", "per_page": "100"},
                                  list_key="check_runs"):
            if external_id and str(item.get("external_id") or "") == external_id:
                return int(item["id"])
        return 0

    def find_comment(self, repo: str, number: int, marker: str, author: str) -> Comment | None:
        owner, name = _parts(repo)
        self._token(repo)
        for c in self.gh._iter(-1, self._url("repos", owner, name, "issues", number, "comments"), dict):
            body, login = str(c.get("body") or ""), str((c.get("user") or {}).get("login", ""))
            if login == author and body.startswith(marker):
                return Comment(int(c["id"]), login, body)
        return None

    def permission(self, repo: str, user: str) -> str:
        owner, name = _parts(repo)
        self._token(repo)
        response = self.gh._get(self._url("repos", owner, name, "collaborators", user, "permission"))
        if response is not None and response.status_code == 404:
            return "none"
        data = self.gh._json(response, 200) or {}
        role = str(data.get("role_name") or "")
        return role if role in ROLES else str(data.get("permission") or "none")

    def is_team_member(self, org: str, team_slug: str, user: str) -> bool:
        self._token("", org=org)
        response = self.gh._get(self._url("orgs", org, "teams", team_slug, "memberships", user))
        if response is not None and response.status_code == 404:
            return False
        return (self.gh._json(response, 200) or {}).get("state") == "active"

    # -- writing -------------------------------------------------------------------------------------------
    def create_check_run(self, repo: str, sha: str, name: str, output: CheckOutput, external_id: str = "") -> int:
        owner, run = _parts(repo)
        first, *rest = check_payloads(output, "in_progress")
        body = {"name": name, "head_sha": sha, "external_id": external_id, "status": "in_progress", **first}
        data = self._call(repo, "post", self._url("repos", owner, run, "check-runs"), 201, body)
        check_id = int(data["id"])
        for payload in rest:
            self._call(repo, "patch", self._url("repos", owner, run, "check-runs", check_id), 200, payload)
        return check_id

    def update_check_run(self, repo: str, check_id: int, output: CheckOutput, status: str = "in_progress",
                         conclusion: str | None = None) -> None:
        owner, name = _parts(repo)
        url = self._url("repos", owner, name, "check-runs", check_id)
        if output.annotations:  # GitHub appends every annotation it is sent: after a retry (say, a PATCH that
            # landed but whose answer was lost) send only those not there yet. A run's annotations come from
            # one job's output for one head, in order, so the ones there are a prefix of ours.
            there = ((self._call(repo, "get", url, 200) or {}).get("output") or {}).get("annotations_count") or 0
            output = replace(output, annotations=output.annotations[int(there):])
        for payload in check_payloads(output, status, conclusion):
            self._call(repo, "patch", url, 200, payload)

    def create_comment(self, repo: str, number: int, body: str) -> int:
        owner, name = _parts(repo)
        data = self._call(repo, "post", self._url("repos", owner, name, "issues", number, "comments"), 201,
                          {"body": body})
        return int(data["id"])

    def edit_comment(self, repo: str, comment_id: int, body: str) -> None:
        owner, name = _parts(repo)
        self._call(repo, "patch", self._url("repos", owner, name, "issues", "comments", comment_id), 200,
                   {"body": body})

    def add_labels(self, repo: str, number: int, labels: Sequence[str]) -> None:
        owner, name = _parts(repo)
        self._call(repo, "post", self._url("repos", owner, name, "issues", number, "labels"), 200,
                   {"labels": list(labels)})

    def dispatch_workflow(self, repo: str, workflow: str, ref: str, inputs: Mapping[str, str]) -> None:
        owner, name = _parts(repo)
        ok = self._call(repo, "post", self._url("repos", owner, name, "actions", "workflows", workflow, "dispatches"),
                        204, {"ref": ref, "inputs": dict(inputs)})
        if not ok:
            raise ForgeError(f"workflow {workflow!r} not found in {repo}")


def forge_factory(settings: BotSettings) -> Any:
    """``job -> GitHubForge`` sharing one token cache (the runner's ``forge_for``)."""
    tokens = InstallationTokens(settings.api_url, settings.app_id, settings.private_key)

    def forge_for(job: Any) -> GitHubForge:
        return GitHubForge(settings, tokens, int(getattr(job, "installation", 0) or 0))

    return forge_for
