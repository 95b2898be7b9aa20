"""The fake GitHub's world, mutated by HTTP handlers and by tests (no HTTP) alike.

Everything takes the one re-entrant lock, so a test may set up or inspect state while the bot
talks to the server from another thread.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from .faults import Recorder
from .gitstore import FileSpec, GitStore, files_from_dir
from .models import (
    PERMISSIONS,
    CheckRun,
    Comment,
    Dispatch,
    Installation,
    Label,
    Pull,
    Repo,
    Token,
    User,
)


class State(Recorder):
    """Repos, PRs, comments, check runs, labels, permissions, tokens, faults and logs."""

    def __init__(self, root: Path, app_slug: str = "labrador-bot", token_ttl: float = 3600.0) -> None:
        self.root = root
        self.app_slug = app_slug
        self.token_ttl = token_ttl
        self.lock = threading.RLock()
        self._ids = {k: itertools.count(base) for k, base in _ID_BASES.items()}
        self.users: dict[str, User] = {}
        self.installations: dict[str, Installation] = {}  # account login -> installation
        self.tokens: dict[str, Token] = {}
        self.repos: dict[str, Repo] = {}
        self.pulls: dict[tuple[str, int], Pull] = {}
        self.comments: dict[int, Comment] = {}
        self.check_runs: dict[int, CheckRun] = {}
        self.suites: dict[tuple[str, str], int] = {}
        self.dispatches: list[Dispatch] = []
        self.teams: dict[tuple[str, str], dict[str, str]] = {}  # (org, slug) -> login -> role
        self.faults = []
        self.requests = []
        self.errors = []  # spec violations / crashes / unimplemented endpoints: fail the test
        self._numbers: dict[str, itertools.count[int]] = {}
        self.bot_login = f"{app_slug}[bot]"
        self.user(self.bot_login, "Bot")

    def next_id(self, kind: str) -> int:
        return next(self._ids[kind])

    # -- accounts and auth -------------------------------------------------------------------
    def user(self, login: str, type_: str = "User") -> User:
        """Get or create an account (ids are stable for the server's lifetime)."""
        with self.lock:
            if login not in self.users:
                self.users[login] = User(login, self.next_id("user"), type_)
            return self.users[login]

    def installation(self, account: str) -> Installation:
        """The app's installation on `account` (one per owner, created on demand)."""
        with self.lock:
            if account not in self.installations:
                self.user(account)
                self.installations[account] = Installation(self.next_id("installation"), account)
            return self.installations[account]

    def installation_by_id(self, installation_id: int) -> Installation | None:
        return next((i for i in self.installations.values() if i.id == installation_id), None)

    def mint_token(self, installation_id: int, ttl: float | None = None) -> Token:
        """Issue an installation token like `POST /app/installations/{id}/access_tokens` does."""
        with self.lock:
            tok = Token("ghs_" + secrets.token_hex(18), installation_id, time.time() + (ttl or self.token_ttl))
            self.tokens[tok.token] = tok
            return tok

    def expire_tokens(self) -> None:
        """Make every issued installation token stale (tests the bot's token refresh)."""
        with self.lock:
            for tok in self.tokens.values():
                tok.expires_at = time.time() - 1

    # -- repositories and pull requests ------------------------------------------------------
    def create_repo(
        self,
        full_name: str,
        files: FileSpec | Path | None = None,
        *,
        default_branch: str = "main",
        private: bool = False,
        description: str | None = None,
        message: str = "Initial commit",
    ) -> Repo:
        """Create `owner/name` with one commit of `files` (a mapping or a directory) on the default branch."""
        owner, name = full_name.split("/")
        content = files_from_dir(files) if isinstance(files, Path) else dict(files or {"README.md": "# repo\n"})
        with self.lock:
            if full_name in self.repos:
                raise ValueError(f"repository {full_name} exists")
            self.installation(owner)
            git = GitStore(self.root / owner / f"{name}.git")
            git.commit(content, message, parent=None, ref=f"refs/heads/{default_branch}")
            repo = Repo(self.next_id("repo"), owner, name, git, default_branch, private, description)
            self.repos[full_name] = repo
            return repo

    def repo(self, full_name: str) -> Repo:
        with self.lock:
            return self.repos[full_name]

    def push(self, full_name: str, branch: str, files: FileSpec, message: str = "Update") -> str:
        """Commit `files` onto `branch` (creating it from the default branch) and return the new SHA."""
        with self.lock:
            repo = self.repos[full_name]
            assert repo.git is not None
            parent = repo.git.tip(f"refs/heads/{branch}") or repo.git.tip(f"refs/heads/{repo.default_branch}")
            repo.pushed_at = time.time()
            return repo.git.commit(files, message, parent=parent, ref=f"refs/heads/{branch}")

    def open_pr(
        self,
        full_name: str,
        files: FileSpec,
        *,
        title: str = "Add knowledge",
        body: str | None = "",
        user: str = "contributor",
        head_ref: str | None = None,
        base: str | None = None,
        from_fork: bool = True,
        draft: bool = False,
        message: str | None = None,
    ) -> Pull:
        """Open a PR whose single commit applies `files` (None deletes) on top of `base`.

        With `from_fork` (the usual community case) `head.repo` is `user/<name>`, a fork that exists
        only as metadata; the commits live in the base repo under `refs/pull/N/head` like on GitHub.
        """
        with self.lock:
            repo = self.repos[full_name]
            assert repo.git is not None
            base = base or repo.default_branch
            number = next(self._numbers.setdefault(full_name, itertools.count(1)))
            head_ref = head_ref or f"pr-{number}"
            parent = repo.git.tip(f"refs/heads/{base}")
            sha = repo.git.commit(files, message or title, parent=parent, ref=f"refs/pull/{number}/head")
            head_repo = full_name
            if from_fork:
                head_repo = f"{user}/{repo.name}"
                if head_repo not in self.repos:
                    self.repos[head_repo] = Repo(self.next_id("repo"), user, repo.name, None, fork_of=full_name)
            else:
                repo.git.set_ref(f"refs/heads/{head_ref}", sha)
            self.user(user)
            pr = Pull(self.next_id("pull"), number, full_name, head_repo, user, title, body, head_ref, sha, base)
            pr.draft, pr.head_history = draft, [sha]
            self.pulls[(full_name, number)] = pr
            return pr

    def pull(self, full_name: str, number: int) -> Pull:
        with self.lock:
            return self.pulls[(full_name, number)]

    def push_to_pr(self, full_name: str, number: int, files: FileSpec, message: str = "Update PR") -> Pull:
        """Add a commit to the PR head (the `synchronize` case); `pr.head_history[-2]` is the old SHA."""
        with self.lock:
            pr = self.pulls[(full_name, number)]
            git = self.repos[full_name].git
            assert git is not None
            pr.head_sha = git.commit(files, message, parent=pr.head_sha, ref=f"refs/pull/{number}/head")
            if pr.head_repo == full_name:
                git.set_ref(f"refs/heads/{pr.head_ref}", pr.head_sha)
            pr.head_history.append(pr.head_sha)
            pr.updated_at = time.time()
            return pr

    def force_push_pr(self, full_name: str, number: int, sha: str) -> Pull:
        """Point the PR head at an existing commit (`git push --force`), e.g. back to an earlier head."""
        with self.lock:
            pr = self.pulls[(full_name, number)]
            git = self.repos[full_name].git
            assert git is not None
            git.set_ref(f"refs/pull/{number}/head", sha)
            if pr.head_repo == full_name:
                git.set_ref(f"refs/heads/{pr.head_ref}", sha)
            pr.head_sha = sha
            pr.head_history.append(sha)
            pr.updated_at = time.time()
            return pr

    def close_pr(self, full_name: str, number: int, *, merge: bool = False, merged_by: str = "maintainer") -> Pull:
        """Close the PR; with `merge` create a real merge commit on the base branch."""
        with self.lock:
            pr = self.pulls[(full_name, number)]
            git = self.repos[full_name].git
            assert git is not None
            pr.state, pr.closed_at = "closed", time.time()
            if merge:
                msg = f"Merge pull request #{number} from {pr.head_repo.split('/')[0]}/{pr.head_ref}\n\n{pr.title}"
                pr.merge_commit_sha = git.merge(f"refs/heads/{pr.base_ref}", pr.head_sha, msg)
                pr.merged, pr.merged_at, pr.merged_by = True, pr.closed_at, merged_by
                self.user(merged_by)
            pr.updated_at = pr.closed_at
            return pr

    # -- people ------------------------------------------------------------------------------
    def set_permission(self, full_name: str, login: str, permission: str) -> None:
        """Give `login` a role on the repo: admin, maintain, write, triage, read or none."""
        if permission not in PERMISSIONS:
            raise ValueError(f"permission must be one of {PERMISSIONS}")
        with self.lock:
            self.user(login)
            self.repos[full_name].permissions[login] = permission

    def set_team(self, org: str, team_slug: str, members: Mapping[str, str] | list[str]) -> None:
        """Replace a team's active members (`{login: "member"|"maintainer"}` or a list of members)."""
        roles = dict(members) if isinstance(members, Mapping) else dict.fromkeys(members, "member")
        with self.lock:
            for login in roles:
                self.user(login)
            self.teams[(org, team_slug)] = roles

    # -- things the bot does, seen from the test -----------------------------------------------
    def add_comment(self, full_name: str, number: int, body: str, user: str = "maintainer") -> Comment:
        """A human comment (e.g. a `/command`), to pair with an `issue_comment` webhook."""
        with self.lock:
            self.user(user)
            c = Comment(self.next_id("comment"), full_name, number, user, body)
            self.comments[c.id] = c
            return c

    def comments_on(self, full_name: str, number: int, *, include_deleted: bool = False) -> list[Comment]:
        with self.lock:
            return [
                c
                for c in self.comments.values()
                if c.repo == full_name and c.issue_number == number and (include_deleted or not c.deleted)
            ]

    def checks_for(self, full_name: str, head_sha: str | None = None, name: str | None = None) -> list[CheckRun]:
        with self.lock:
            return [
                r
                for r in self.check_runs.values()
                if r.repo == full_name and head_sha in (None, r.head_sha) and name in (None, r.name)
            ]

    def labels_on(self, full_name: str, number: int) -> list[str]:
        with self.lock:
            return list(self.pulls[(full_name, number)].labels)

    def dispatches_for(self, full_name: str | None = None) -> list[Dispatch]:
        with self.lock:
            return [d for d in self.dispatches if full_name in (None, d.repo)]

    def ensure_label(self, full_name: str, name: str, color: str = "ededed", description: str | None = None) -> Label:
        with self.lock:
            repo = self.repos[full_name]
            key = name.lower()
            found = next((lb for lb in repo.labels.values() if lb.name.lower() == key), None)
            if found is None:
                found = Label(self.next_id("label"), name, color, description)
                repo.labels[name] = found
            return found


_ID_BASES = {
    "user": 5_000_001,
    "installation": 60_000_001,
    "repo": 700_000_001,
    "pull": 1_800_000_001,
    "comment": 2_900_000_001,
    "check_run": 30_000_000_001,
    "check_suite": 40_000_000_001,
    "label": 6_100_000_001,
    "workflow_run": 12_000_000_001,
}
