"""Shared helpers for the bot tests (no tests here): an in-memory implementation of OUR ``Forge`` protocol,
a file-backed variant that several processes can share, git repositories built with pygit2, a tiny previewer.

The forge fakes our own interface only; the real GitHub client is exercised end to end against the loopback
GitHub API server elsewhere. Fetching is real: ``labrador.bot.gitcache.fetch`` from a local origin repository.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pygit2

from labrador.bot import gitcache
from labrador.bot.config import BotSettings, Secret
from labrador.bot.forge import ChangedFile, CheckOutput, Comment, PullRequest, check_payloads
from labrador.bot.preview import PreviewResult
from labrador.validators import Config

SIG = pygit2.Signature("Test", "test@example.com", 1_700_000_000, 0)
ROOT = Path(__file__).resolve().parents[1]
SKILL = ROOT / "taxonomy/compositional_skills/grounded/extraction/table_to_bullets"
SECRET = "webhook-s3cret"


def skill_files(folder: str, qna: bytes | None = None) -> dict[str, bytes]:
    """A valid skill leaf (from the repository's own taxonomy) at ``taxonomy/<folder>``."""
    return {f"taxonomy/{folder}/qna.yaml": qna if qna is not None else (SKILL / "qna.yaml").read_bytes(),
            f"taxonomy/{folder}/attribution.txt": (SKILL / "attribution.txt").read_bytes()}


def commit(repo: pygit2.Repository, files: Mapping[str, bytes | tuple[bytes, int]], parents: Sequence[Any] = (),
           ref: str | None = None, message: str = "commit") -> str:
    """A commit whose tree is exactly ``files`` (path -> bytes, or (bytes, filemode)); no working tree."""
    index = pygit2.Index()
    for path, value in files.items():
        data, mode = value if isinstance(value, tuple) else (value, pygit2.enums.FileMode.BLOB)
        index.add(pygit2.IndexEntry(path, repo.create_blob(data), mode))
    tree = index.write_tree(repo)
    oid = repo.create_commit(ref, SIG, SIG, message, tree, [pygit2.Oid(hex=str(p)) for p in parents])
    return str(oid)


class Origin:
    """A bare "GitHub-side" repository: main, and refs/pull/N/head for pull requests."""

    def __init__(self, path: Path, base_files: Mapping[str, bytes]) -> None:
        self.path = path
        self.repo = pygit2.init_repository(str(path), bare=True, initial_head="main")
        self.base_files = dict(base_files)
        self.main = commit(self.repo, self.base_files, ref="refs/heads/main", message="base")

    def push_pr(self, number: int, files: Mapping[str, bytes | tuple[bytes, int]], parent: str | None = None) -> str:
        sha = commit(self.repo, files, [parent or self.main], message=f"pr {number}")
        self.repo.references.create(f"refs/pull/{number}/head", pygit2.Oid(hex=sha), force=True)
        return sha


class MemoryForge:
    """Our Forge protocol in memory; every call is logged in ``calls``."""

    def __init__(self, origins: Mapping[str, Path] | None = None) -> None:
        self.data: dict[str, Any] = {"prs": {}, "files": {}, "checks": {}, "comments": {}, "labels": {},
                                     "perms": {}, "teams": {}, "dispatches": [], "next": 100,
                                     "origins": {k: str(v) for k, v in (origins or {}).items()}}
        self.calls: list[str] = []

    @contextlib.contextmanager
    def _tx(self, name: str) -> Iterator[dict[str, Any]]:
        self.calls.append(name)
        yield self.data

    def _id(self, d: dict[str, Any]) -> int:
        d["next"] += 1
        return d["next"]

    # test set-up
    def add_pr(self, pr: PullRequest, files: Sequence[ChangedFile] = ()) -> None:
        with self._tx("add_pr") as d:
            d["prs"][f"{pr.repo}#{pr.number}"] = asdict(pr)
            d["files"][f"{pr.repo}#{pr.number}"] = [asdict(f) for f in files]

    def set_permission(self, repo: str, user: str, level: str) -> None:
        with self._tx("set_permission") as d:
            d["perms"][f"{repo}:{user}"] = level

    def add_team_member(self, org: str, slug: str, user: str) -> None:
        with self._tx("add_team_member") as d:
            d["teams"].setdefault(f"{org}/{slug}", []).append(user)

    # the protocol
    def pull_request(self, repo: str, number: int) -> PullRequest:
        with self._tx("pull_request") as d:
            return PullRequest(**d["prs"][f"{repo}#{number}"])

    def changed_files(self, repo: str, number: int) -> list[ChangedFile]:
        with self._tx("changed_files") as d:
            return [ChangedFile(**f) for f in d["files"].get(f"{repo}#{number}", [])]

    def fetch(self, pr: PullRequest, cache_dir: Path) -> Path:
        with self._tx("fetch") as d:
            url = d["origins"][pr.repo]
        refspecs = gitcache.pr_refspecs(pr.number, pr.base_ref)
        return gitcache.fetch(cache_dir, pr.repo, url, refspecs, [pr.head_sha, pr.base_sha], Secret("unused"))

    def open_pull_requests_for(self, repo: str, sha: str) -> list[int]:
        with self._tx("open_pull_requests_for") as d:
            return sorted(p["number"] for p in d["prs"].values()
                          if p["repo"] == repo and p["head_sha"] == sha and p["state"] == "open")

    def find_check_run(self, repo: str, sha: str, name: str, external_id: str) -> int:
        with self._tx("find_check_run") as d:
            return next((int(k) for k, r in d["checks"].items() if (r["repo"], r["sha"], r["name"], r["external_id"])
                         == (repo, sha, name, external_id) and external_id), 0)

    def create_check_run(self, repo: str, sha: str, name: str, output: CheckOutput, external_id: str = "") -> int:
        with self._tx("create_check_run") as d:
            check_id = self._id(d)
            d["checks"][str(check_id)] = {"repo": repo, "sha": sha, "name": name, "status": "in_progress",
                                          "conclusion": None, "title": output.title, "summary": output.summary,
                                          "annotations": [], "patches": 0, "external_id": external_id}
            return check_id

    def update_check_run(self, repo: str, check_id: int, output: CheckOutput, status: str = "in_progress",
                         conclusion: str | None = None) -> None:
        with self._tx("update_check_run") as d:
            run = d["checks"][str(check_id)]
            assert run["status"] != "completed", f"check run {check_id} updated after it completed"
            for payload in check_payloads(output, status, conclusion):
                run["patches"] += 1
                run["title"] = payload["output"]["title"]
                run["summary"] = payload["output"]["summary"]
                run["annotations"] += payload["output"].get("annotations", [])
                run["status"] = payload.get("status", run["status"])
                run["conclusion"] = payload.get("conclusion", run["conclusion"])

    def find_comment(self, repo: str, number: int, marker: str, author: str) -> Comment | None:
        with self._tx("find_comment") as d:
            for cid, c in sorted(d["comments"].items(), key=lambda kv: int(kv[0])):
                if c["pr"] == f"{repo}#{number}" and c["author"] == author and c["body"].startswith(marker):
                    return Comment(int(cid), c["author"], c["body"])
            return None

    def create_comment(self, repo: str, number: int, body: str, author: str = "labrador[bot]") -> int:
        with self._tx("create_comment") as d:
            assert len(body) <= 65_536
            cid = self._id(d)
            d["comments"][str(cid)] = {"pr": f"{repo}#{number}", "author": author, "body": body, "edits": 0}
            return cid

    def edit_comment(self, repo: str, comment_id: int, body: str) -> None:
        with self._tx("edit_comment") as d:
            assert len(body) <= 65_536
            d["comments"][str(comment_id)]["body"] = body
            d["comments"][str(comment_id)]["edits"] += 1

    def add_labels(self, repo: str, number: int, labels: Sequence[str]) -> None:
        with self._tx("add_labels") as d:
            have = d["labels"].setdefault(f"{repo}#{number}", [])
            have += [label for label in labels if label not in have]

    def permission(self, repo: str, user: str) -> str:
        with self._tx("permission") as d:
            return d["perms"].get(f"{repo}:{user}", "read")

    def is_team_member(self, org: str, team_slug: str, user: str) -> bool:
        with self._tx("is_team_member") as d:
            return user in d["teams"].get(f"{org}/{team_slug}", [])

    def dispatch_workflow(self, repo: str, workflow: str, ref: str, inputs: Mapping[str, str]) -> None:
        with self._tx("dispatch_workflow") as d:
            d["dispatches"].append({"repo": repo, "workflow": workflow, "ref": ref, "inputs": dict(inputs)})

    # views for assertions
    def checks(self) -> list[dict[str, Any]]:
        with self._tx("checks") as d:
            return [dict(v, id=int(k)) for k, v in sorted(d["checks"].items(), key=lambda kv: int(kv[0]))]

    def comments(self) -> list[dict[str, Any]]:
        with self._tx("comments") as d:
            return [dict(v, id=int(k)) for k, v in sorted(d["comments"].items(), key=lambda kv: int(kv[0]))]


class FileForge(MemoryForge):
    """The same forge, kept in a JSON file under a lock, so a worker subprocess and the test share it."""

    def __init__(self, path: Path, origins: Mapping[str, Path] | None = None) -> None:
        super().__init__(origins)
        self.path = Path(path)
        if not self.path.exists() or origins:
            self.path.write_text(json.dumps(self.data))

    @contextlib.contextmanager
    def _tx(self, name: str) -> Iterator[dict[str, Any]]:
        fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.data = json.loads(self.path.read_text())
            self.data.setdefault("calls", []).append(name)
            yield self.data
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data))
            os.replace(tmp, self.path)
        finally:
            os.close(fd)


class EchoPreviewer:
    """A real (tiny) previewer: one sample per seed, question and answer echoed with a marker."""

    def __init__(self, delay_s: float = 0.0, fail: str = "") -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.calls: list[str] = []

    async def preview(self, leaf_relpath: str, leaf_bytes: bytes, documents: Any, report: Any = None
                      ) -> PreviewResult:
        self.calls.append(leaf_relpath)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError(self.fail)
        import yaml

        seeds = yaml.safe_load(leaf_bytes)["seed_examples"]
        samples = [{"question": f"Q: {s['question']}", "answer": f"A: {s['answer']}"} for s in seeds[:2]]
        return PreviewResult(samples=samples, kept=len(samples), dropped={"judge": 1}, seconds=0.25)


def settings_for(tmp: Path, queue_url: str = "", **overrides: Any) -> BotSettings:
    """Fast test settings: a SQLite queue in ``tmp``, short heartbeats, our webhook secret."""
    base = {"work_dir": str(tmp / "work"), "queue_url": queue_url or f"sqlite:///{tmp / 'queue.db'}",
            "webhook_secret": Secret(SECRET), "heartbeat_s": 0.05, "retries": 0, "retry_delay_s": 0.0,
            "job_deadline_s": 30.0, "checker": Config(cache_dir=str(tmp / "cache"))}
    base.update(overrides)
    return BotSettings(**base)


def pr_for(origin: Origin, number: int, head: str, repo: str = "acme/taxonomy", author: str = "alice",
           state: str = "open") -> PullRequest:
    return PullRequest(repo=repo, number=number, state=state, head_sha=head, base_ref="main",
                       base_sha=origin.main, default_branch="main", author=author, clone_url=str(origin.path),
                       updated_at=1_700_000_100.0)
