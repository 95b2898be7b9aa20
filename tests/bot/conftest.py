"""The bot tests' fixtures: the GitHub test server as ``gh``, and bots wired to it (``make_bot``, ``bot``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2ekit import BASE, REPO, Bot
from ghserver import GitHubServer


@pytest.fixture
def gh(github_server: GitHubServer) -> GitHubServer:
    github_server.state.create_repo(REPO, BASE)
    github_server.state.set_permission(REPO, "maintainer", "write")
    github_server.state.set_permission(REPO, "outsider", "read")
    return github_server


@pytest.fixture
def make_bot(gh: GitHubServer, tmp_path: Path) -> Iterator[Callable[..., Bot]]:
    bots: list[Bot] = []

    def make(name: str = "bot", **overrides: Any) -> Bot:
        bots.append(Bot(gh, tmp_path / name, **overrides))
        return bots[-1]

    yield make
    for bot in bots:
        bot.close()


@pytest.fixture
def bot(make_bot: Callable[..., Bot]) -> Bot:
    return make_bot()
