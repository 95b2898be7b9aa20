"""A GitHub API + git test server that cannot silently drift from GitHub.

Every JSON response, request body and webhook payload is checked against GitHub's OpenAPI
description from npm `@octokit/openapi`; webhooks start from `@octokit/webhooks-examples`.
Spec violations, handler crashes and calls to real-but-unimplemented endpoints are recorded in
`server.errors` and fail the test at fixture teardown (clear them if a test provokes one).

    from ghserver import github_server  # noqa: F401 - pytest fixture (use `# noqa: F811` on params)

    def test_bot(github_server):
        gh = github_server
        gh.state.create_repo("org/taxonomy", {"README.md": "hi"})  # or a Path to a directory
        pr = gh.state.open_pr("org/taxonomy", {"knowledge/x/qna.yaml": "..."}, user="alice")
        settings = BotSettings(app_id=str(gh.app_id), api_url=gh.api_url,
                               private_key=Secret(gh.private_key_pem.decode()), bot_login=gh.state.bot_login)
        headers, body = gh.delivery("pull_request", gh.pull_request_event("org/taxonomy", pr.number, "opened"))
        ...  # hand (headers, body) to the bot, then assert on gh.state.checks_for(...), comments_on(...)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .models import CheckRun, Comment, Dispatch, Fault, Label, LoggedRequest, Pull, Repo
from .npm import PACKAGES, install_command, npm_dir
from .openapi import Spec, SpecViolation, load_spec
from .server import GitHubServer
from .state import State
from .webhooks import delivery, example_events, rewrite_example, sign, verify, webhook_example

__all__ = [
    "PACKAGES",
    "CheckRun",
    "Comment",
    "Dispatch",
    "Fault",
    "GitHubServer",
    "Label",
    "LoggedRequest",
    "Pull",
    "Repo",
    "Spec",
    "SpecViolation",
    "State",
    "delivery",
    "example_events",
    "github_server",
    "install_command",
    "load_spec",
    "npm_dir",
    "rewrite_example",
    "sign",
    "verify",
    "webhook_example",
]


@pytest.fixture
def github_server() -> Iterator[GitHubServer]:
    """A started server; teardown stops it and fails the test on any recorded spec violation."""
    with GitHubServer() as server:
        yield server
        server.raise_errors()
