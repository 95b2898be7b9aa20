"""Fetch pull-request commits into a bare cache repository with pygit2, and nothing more.

Why bare and pygit2: PR content is hostile data. No worktree is checked out, no hook or filter can run, no
``git`` binary is spawned, and the token reaches libgit2 through a credentials callback only, never a URL,
argv or log line. Fetches are bounded in size and time, one per repository at a time (file lock).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import pygit2

from labrador.validators.gitfetch import BoundedFetch, bare_repository, bound_network_waits
from labrador.validators.locks import file_lock

from .config import Secret
from .forge import ForgeError, HeadMissing

PULL_REF = "refs/labrador/pull/{number}"
BASE_REF = "refs/labrador/base/{ref}"
_USERINFO = re.compile(r"(\w+://)[^/@\s]*@")


def redact(text: str) -> str:
    """Drop userinfo from any URL in ``text`` (belt and braces: we never put credentials in URLs)."""
    return _USERINFO.sub(r"\1", text)


class _Callbacks(BoundedFetch):
    """Token on demand, at most twice (libgit2 asks again forever on a bad one), size and time bounds."""

    def __init__(self, token: Secret | None, max_bytes: int, timeout_s: float) -> None:
        super().__init__(max_bytes, timeout_s, ForgeError)
        self._token = token
        self._asked = 0

    def credentials(self, url: str, username_from_url: str | None, allowed_types: int) -> pygit2.UserPass:
        self._asked += 1
        if not self._token or self._asked > 2:
            raise ForgeError("the git server refused the credentials")
        return pygit2.UserPass("x-access-token", self._token.reveal())


def cache_path(cache_dir: Path, repo: str) -> Path:
    """A bare repository per forge repository; the name is a digest, so no path tricks in ``repo``."""
    digest = hashlib.sha256(repo.encode()).hexdigest()[:20]
    return Path(cache_dir) / f"{digest}.git"


def pr_refspecs(number: int, base_ref: str) -> list[str]:
    """What to fetch for a PR: its head (``refs/pull/N/head``, also for forks) and its base branch."""
    return [f"+refs/pull/{number}/head:{PULL_REF.format(number=number)}",
            f"+refs/heads/{base_ref}:{BASE_REF.format(ref=base_ref)}"]


def base_commit(repo: pygit2.Repository, base_sha: str, base_ref: str) -> str:
    """The PR's base commit if fetched, else the fetched tip of its base branch (the merge-base is the same
    unless the base branch was rewritten)."""
    if base_sha and repo.get(base_sha) is not None:
        return base_sha
    ref = repo.references.get(BASE_REF.format(ref=base_ref))
    if ref is None:
        raise ForgeError(f"the base branch {base_ref!r} was not fetched")
    return str(ref.peel(pygit2.Commit).id)


def fetch(cache_dir: Path, repo: str, url: str, refspecs: Sequence[str], want: Sequence[str],
          token: Secret | None = None, max_bytes: int = 512 << 20, timeout_s: float = 300.0) -> Path:
    """Make every commit in ``want`` present in the cache for ``repo``, fetching ``refspecs`` from ``url``
    if any is missing. Raises :class:`HeadMissing` when the fetch worked but ``want[0]`` is not there."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    gitdir = cache_path(cache_dir, repo)
    with file_lock(gitdir.with_name(gitdir.name + ".lock")):
        git = bare_repository(gitdir)
        if all(git.get(sha) is not None for sha in want):
            return gitdir
        bound_network_waits()
        remote = git.remotes.create_anonymous(url)
        try:
            remote.fetch(list(refspecs), callbacks=_Callbacks(token, max_bytes, timeout_s))
        except ForgeError:
            raise
        except (pygit2.GitError, OSError, ValueError) as exc:
            raise ForgeError(f"could not fetch {redact(url)}: {redact(str(exc))}") from None
        missing = [sha for sha in want if git.get(sha) is None]
        if want and want[0] in missing:
            raise HeadMissing(f"commit {want[0][:12]} is no longer part of the pull request")
        return gitdir
