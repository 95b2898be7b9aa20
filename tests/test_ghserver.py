"""The GitHub test server, driven through the real github3.py client, pygit2 and raw HTTP."""

from __future__ import annotations

import http.server
import tempfile
import threading
import time
from typing import Any

import github3
import jwt
import pygit2
import pytest
import requests
from ghserver import (
    GitHubServer,
    SpecViolation,
    load_spec,
    rewrite_example,
    verify,
    webhook_example,
)

REPO = "org/taxonomy"
SEED = {"README.md": "# taxonomy\n", "knowledge/science/qna.yaml": "version: 3\n"}
WORKFLOW = "on:\n  workflow_dispatch:\n    inputs: {pr: {required: true}}\njobs: {}\n"


@pytest.fixture
def server(github_server: GitHubServer) -> GitHubServer:
    return github_server


@pytest.fixture
def gh(server: GitHubServer) -> Any:
    """An installation-authenticated github3 client plus a repo with one open PR (#1)."""
    server.state.create_repo(REPO, {**SEED, ".github/workflows/train.yml": WORKFLOW})
    server.state.open_pr(
        REPO,
        {"knowledge/science/qna.yaml": "version: 3\nseed: 1\n", "new.md": "x\n"},
        title="Add science",
        body="Please merge",
        user="alice",
    )
    return server.github3_client("org")


def _jwt(server: GitHubServer, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iat": now - 30, "exp": now + 300, "iss": str(server.app_id)} | claims
    return jwt.encode(payload, server.private_key_pem, algorithm="RS256")


def test_app_jwt_then_installation_token_reads_pull_request(server: GitHubServer, gh: Any) -> None:
    app_client = github3.GitHub()
    app_client.session.base_url = server.url
    app_client.login_as_app(server.private_key_pem, str(server.app_id))
    assert app_client.authenticated_app().id == server.app_id
    pr = gh.pull_request("org", "taxonomy", 1)
    state_pr = server.state.pull(REPO, 1)
    assert (pr.head.sha, pr.title, pr.body, pr.user.login) == (
        state_pr.head_sha,
        "Add science",
        "Please merge",
        "alice",
    )
    assert pr.head.repo == ("alice", "taxonomy") and pr.base.ref == "main"
    files = {f.filename: f for f in pr.files()}
    assert set(files) == {"knowledge/science/qna.yaml", "new.md"}
    assert files["new.md"].status == "added" and files["knowledge/science/qna.yaml"].additions == 1
    assert pr.additions_count == 2 and pr.commits_count == 1
    repo = gh.repository("org", "taxonomy")
    commit = repo.commit(state_pr.head_sha)
    assert commit.sha == state_pr.head_sha and len(commit.files) == 2
    assert [p.number for p in repo.pull_requests(state="open")] == [1]
    assert repo.file_contents("knowledge/science/qna.yaml", ref=state_pr.head_sha).decoded == b"version: 3\nseed: 1\n"
    assert {c.name for _, c in repo.directory_contents("knowledge")} == {"science"}
    assert app_client.app_installation_for_repository("org", "taxonomy").id == server.installation_id("org")
    org_inst = app_client.session.get(f"{server.url}/orgs/org/installation").json()
    assert org_inst["id"] == server.installation_id("org") and org_inst["account"]["login"] == "org"


def test_auth_failures_are_401(server: GitHubServer, gh: Any) -> None:
    url, inst = server.url, server.installation_id("org")
    token_url = f"{url}/app/installations/{inst}/access_tokens"
    bad = [
        _jwt(server, iss="999"),
        _jwt(server, exp=int(time.time()) + 3600),
        _jwt(server, iat=int(time.time()) - 900, exp=int(time.time()) - 300),
        "not.a.jwt",
    ]
    for token in bad:
        assert requests.post(token_url, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    good = requests.post(token_url, headers={"Authorization": f"Bearer {_jwt(server)}"})
    assert good.status_code == 201 and good.json()["token"].startswith("ghs_")
    assert requests.get(f"{url}/repos/{REPO}/pulls/1").status_code == 401
    assert requests.get(f"{url}/repos/{REPO}/pulls/1", headers={"Authorization": "token nope"}).status_code == 401
    headers = {"Authorization": f"token {good.json()['token']}"}
    assert requests.get(f"{url}/repos/{REPO}/pulls/1", headers=headers).status_code == 200
    assert requests.get(f"{url}/app", headers=headers).status_code == 401  # app endpoints need the JWT
    server.state.create_repo("elsewhere/repo")
    assert requests.get(f"{url}/repos/elsewhere/repo", headers=headers).status_code == 404  # other installation
    server.state.expire_tokens()
    assert requests.get(f"{url}/repos/{REPO}/pulls/1", headers=headers).status_code == 401


def test_files_are_paginated_with_link_header(server: GitHubServer, gh: Any) -> None:
    server.state.open_pr(REPO, {f"knowledge/f{i:03}.md": f"{i}\n" for i in range(75)})
    resp = gh.session.get(f"{server.url}/repos/{REPO}/pulls/2/files", params={"per_page": 30, "page": 2})
    assert len(resp.json()) == 30 and resp.json()[0]["filename"] == "knowledge/f030.md"
    assert set(resp.links) == {"next", "last", "prev", "first"} and "page=3" in resp.links["last"]["url"]
    names = [f.filename for f in gh.pull_request("org", "taxonomy", 2).files()]
    assert names == [f"knowledge/f{i:03}.md" for i in range(75)]


def test_issue_comments_create_edit_list_delete(server: GitHubServer, gh: Any) -> None:
    pr = gh.pull_request("org", "taxonomy", 1)
    comment = pr.create_comment("Checking your contribution…")
    assert comment.user.login == "labrador-bot[bot]"
    assert comment.edit("All checks passed")
    server.state.add_comment(REPO, 1, "/retry", user="alice")
    assert [c.body for c in pr.issue().comments()] == ["All checks passed", "/retry"]
    stored = server.state.comments_on(REPO, 1)[0]
    assert stored.edits == ["Checking your contribution…"] and stored.body == "All checks passed"
    resp = gh.session.post(f"{server.url}/repos/{REPO}/issues/1/comments", json={"body": "x" * 70000})
    assert resp.status_code == 422
    assert comment.delete() and len(server.state.comments_on(REPO, 1)) == 1


def _notes(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "path": "new.md",
            "start_line": i + 1,
            "end_line": i + 1,
            "annotation_level": "warning",
            "message": f"problem {i}",
        }
        for i in range(start, start + n)
    ]


def test_check_run_annotations_accumulate_and_history_is_kept(server: GitHubServer, gh: Any) -> None:
    sha = server.state.pull(REPO, 1).head_sha
    repo = gh.repository("org", "taxonomy")
    run = repo.create_check_run(
        "labrador/validate",
        sha,
        status="in_progress",
        output={"title": "Validating", "summary": "…", "annotations": _notes(50)},
    )
    assert run.update(
        status="completed",
        conclusion="failure",
        output={"title": "2 problems", "summary": "bad", "annotations": _notes(30, 50)},
    )
    assert run.output.annotations_count == 80 and run.conclusion == "failure"
    assert len(list(run.output.annotations())) == 80
    stored = server.state.check_runs[run.id]
    assert [h["method"] for h in stored.history] == ["POST", "PATCH"] and stored.completed_at is not None
    url = f"{server.url}/repos/{REPO}/check-runs"
    too_many = {"name": "x", "head_sha": sha, "output": {"title": "t", "summary": "s", "annotations": _notes(51)}}
    assert gh.session.post(url, json=too_many).status_code == 422
    assert gh.session.post(url, json={"name": "x", "head_sha": "0" * 40}).status_code == 422
    assert gh.session.post(url, json={"name": "x", "head_sha": sha, "status": "completed"}).status_code == 422
    repo.create_check_run("labrador/validate", sha, conclusion="success", completed_at="2030-01-01T00:00:00Z")
    listed = gh.session.get(f"{server.url}/repos/{REPO}/commits/{sha}/check-runs").json()
    assert listed["total_count"] == 1 and listed["check_runs"][0]["conclusion"] == "success"
    everything = gh.session.get(f"{server.url}/repos/{REPO}/commits/{sha}/check-runs?filter=all").json()
    assert everything["total_count"] == 2
    assert everything["check_runs"][0]["pull_requests"] == []  # PR 1 comes from a fork: GitHub names none there


def test_labels_are_created_on_the_fly(server: GitHubServer, gh: Any) -> None:
    issue = gh.issue("org", "taxonomy", 1)
    assert [lb.name for lb in issue.add_labels("needs-review", "knowledge")] == ["needs-review", "knowledge"]
    assert server.state.labels_on(REPO, 1) == ["needs-review", "knowledge"]
    repo = gh.repository("org", "taxonomy")
    repo.create_label("skill", "00ff00", description="skills")
    assert {lb.name for lb in repo.labels()} == {"needs-review", "knowledge", "skill"}
    assert issue.remove_label("knowledge") and server.state.labels_on(REPO, 1) == ["needs-review"]
    assert gh.session.post(f"{server.url}/repos/{REPO}/labels", json={"name": "Skill"}).status_code == 422


def test_permissions_and_team_membership(server: GitHubServer, gh: Any) -> None:
    server.state.set_permission(REPO, "triager", "triage")
    server.state.set_team("org", "maintainers", {"bob": "maintainer"})
    base = f"{server.url}/repos/{REPO}/collaborators"
    perms = {u: gh.session.get(f"{base}/{u}/permission").json() for u in ("org", "triager", "alice")}
    assert [perms[u]["permission"] for u in ("org", "triager", "alice")] == ["admin", "read", "read"]
    assert perms["triager"]["role_name"] == "triage"
    assert gh.session.get(f"{base}/ghost/permission").status_code == 404
    team = f"{server.url}/orgs/org/teams/maintainers/memberships"
    assert gh.session.get(f"{team}/bob").json()["role"] == "maintainer"
    assert gh.session.get(f"{team}/alice").status_code == 404


def test_dispatches_are_recorded(server: GitHubServer, gh: Any) -> None:
    base = f"{server.url}/repos/{REPO}"
    ok = gh.session.post(f"{base}/actions/workflows/train.yml/dispatches", json={"ref": "main", "inputs": {"pr": "1"}})
    assert ok.status_code == 204
    assert gh.session.post(f"{base}/actions/workflows/nope.yml/dispatches", json={"ref": "main"}).status_code == 404
    assert gh.session.post(f"{base}/dispatches", json={"event_type": "train", "client_payload": {"pr": 1}}).ok
    got = server.state.dispatches_for(REPO)
    assert [(d.kind, d.workflow_id, d.inputs, d.event_type) for d in got] == [
        ("workflow", "train.yml", {"pr": "1"}, None),
        ("repository", None, {}, "train"),
    ]


def test_fault_injection_errors_then_recovers(server: GitHubServer, gh: Any) -> None:
    server.state.inject_fault(r"/repos/org/taxonomy/pulls/1", status=502, times=2)
    for _ in range(2):
        with pytest.raises(github3.exceptions.ServerError):
            gh.pull_request("org", "taxonomy", 1)
    assert gh.pull_request("org", "taxonomy", 1).number == 1
    server.state.inject_fault(r"/repos/.*/issues/\d+/comments", method="POST", status=None, delay=0.6)
    with pytest.raises(requests.exceptions.ReadTimeout):
        gh.session.post(f"{server.url}/repos/{REPO}/issues/1/comments", json={"body": "hi"}, timeout=0.2)


def test_pygit2_fetches_pull_head_with_installation_token(server: GitHubServer, gh: Any) -> None:
    local = pygit2.init_repository(tempfile.mkdtemp(prefix="fetch-"), bare=True)
    remote = local.remotes.create_anonymous(server.git_url(REPO))
    creds = pygit2.RemoteCallbacks(credentials=pygit2.UserPass("x-access-token", server.installation_token("org")))
    remote.fetch(["+refs/pull/1/head:refs/pr/1"], callbacks=creds)
    assert str(local.references["refs/pr/1"].target) == server.state.pull(REPO, 1).head_sha
    pr = server.state.push_to_pr(REPO, 1, {"new.md": "y\n"})
    remote.fetch(["+refs/pull/1/head:refs/pr/1"], callbacks=creds)
    assert str(local.references["refs/pr/1"].target) == pr.head_sha
    assert local[pr.head_sha].peel(pygit2.Commit).tree["new.md"].data == b"y\n"
    server.state.create_repo("org/secret", {"a.md": "a\n"}, private=True)
    with pytest.raises(pygit2.GitError):  # and no credentials on a private one
        local.remotes.create_anonymous(server.git_url("org/secret")).fetch(["+refs/heads/main:refs/y"])
    local.remotes.create_anonymous(server.git_url(REPO)).fetch(["+refs/pull/1/head:refs/z"])  # public: anyone


def test_openapi_validation_catches_a_wrong_response(server: GitHubServer, gh: Any) -> None:
    sha = server.state.pull(REPO, 1).head_sha
    server.state.inject_fault(r"/repos/.*/check-runs", status=None, mutate=lambda b: b.pop("head_sha") and b)
    resp = gh.session.post(f"{server.url}/repos/{REPO}/check-runs", json={"name": "n", "head_sha": sha})
    assert resp.status_code == 500 and "head_sha" in resp.json()["message"]
    assert isinstance(server.errors.pop(), SpecViolation)
    run = gh.session.post(f"{server.url}/repos/{REPO}/check-runs", json={"name": "n", "head_sha": sha}).json()
    load_spec().validate_response("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}", 200, run)
    with pytest.raises(SpecViolation, match="conclusion"):
        load_spec().validate_response(
            "GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}", 200, {**run, "conclusion": "bogus"}
        )
    gh.session.post(f"{server.url}/repos/{REPO}/statuses/{sha}", json={"state": "success"})  # real, not faked
    assert "does not implement POST /repos/{owner}/{repo}/statuses/{sha}" in str(server.errors.pop())
    bad_request = gh.session.post(f"{server.url}/repos/{REPO}/check-runs", json={"name": "n"})
    assert bad_request.status_code == 422 and "head_sha" in bad_request.json()["message"]


def test_webhook_examples_rewrite_and_sign(server: GitHubServer, gh: Any) -> None:
    raw = webhook_example("pull_request", "opened")
    assert raw["action"] == "opened" and "pull_request" in raw
    payload = rewrite_example(raw, number=7, head_sha="a" * 40, installation_id=42, user={"login": "zoe"})
    assert payload["pull_request"]["user"]["login"] == "zoe" and payload["pull_request"]["user"]["id"]
    assert (payload["number"], payload["pull_request"]["head"]["sha"], payload["installation"]["id"]) == (
        7,
        "a" * 40,
        42,
    )
    opened = server.pull_request_event(REPO, 1, "opened")
    assert opened["pull_request"]["head"]["sha"] == server.state.pull(REPO, 1).head_sha
    assert opened["repository"]["clone_url"] == server.git_url(REPO)
    headers, body = server.delivery("pull_request", opened)
    assert headers["X-GitHub-Event"] == "pull_request" and headers["X-GitHub-Delivery"]
    assert verify(server.webhook_secret, body, headers["X-Hub-Signature-256"])
    server.state.push_to_pr(REPO, 1, {"new.md": "z\n"})
    sync = server.pull_request_event(REPO, 1, "synchronize")
    assert sync["before"] != sync["after"] == server.state.pull(REPO, 1).head_sha
    comment = server.state.add_comment(REPO, 1, "/retry", user="alice")
    assert server.issue_comment_event(comment)["comment"]["body"] == "/retry"
    run = gh.repository("org", "taxonomy").create_check_run("labrador/validate", sync["after"])
    rerun = server.check_run_event(server.state.check_runs[run.id])
    assert rerun["action"] == "rerequested" and rerun["check_run"]["head_sha"] == sync["after"]
    received: list[tuple[Any, bytes]] = []  # (case-insensitive headers, body)

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.headers, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Hook) as bot:
        threading.Thread(target=bot.handle_request, daemon=True).start()
        status, _ = server.deliver(f"http://127.0.0.1:{bot.server_port}/webhook", "check_run", rerun)
    assert status == 202 and received[0][0]["X-GitHub-Event"] == "check_run"
    assert verify(server.webhook_secret, received[0][1], received[0][0]["X-Hub-Signature-256"])
    server.state.close_pr(REPO, 1, merge=True)
    closed = server.pull_request_event(REPO, 1, "closed")
    assert closed["pull_request"]["merged"] is True and closed["pull_request"]["merge_commit_sha"]


def test_enterprise_layout_serves_api_under_api_v3(server: GitHubServer, gh: Any) -> None:
    ghe = server.github3_client("org", enterprise=True)
    pr = ghe.pull_request("org", "taxonomy", 1)
    assert pr.url.startswith(f"{server.url}/api/v3/") and len(list(pr.files())) == 2
