"""Job logic through the real runner, with an in-memory implementation of our Forge protocol and real git."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botkit import SKILL, EchoPreviewer, MemoryForge, Origin, pr_for, settings_for, skill_files

from labrador.bot.forge import STICKY_MARKER, ChangedFile
from labrador.bot.jobs import HELP, MERGED, PREVIEW, RETRY, VALIDATE, Job
from labrador.bot.merges import read_merges
from labrador.bot.runner import Runner
from labrador.bot.state import SqliteState

REPO = "acme/taxonomy"
BASE = {**skill_files("compositional_skills/a/one"), "README.md": b"hi\n"}
NEW = "compositional_skills/new/leaf"


@dataclass
class Env:
    origin: Origin
    forge: MemoryForge
    runner: Runner
    previewer: EchoPreviewer
    state: SqliteState
    tmp: Path

    def push(self, files: dict[str, Any], number: int = 1, author: str = "alice", parent: str | None = None) -> str:
        sha = self.origin.push_pr(number, {**BASE, **files}, parent)
        self.forge.add_pr(pr_for(self.origin, number, sha, author=author))
        return sha

    def run(self, kind: str, sha: str, number: int = 1, **fields: Any) -> Job:
        job = Job(kind, REPO, number, sha, **fields)
        self.runner.run(job)
        return job

    def sticky(self) -> str:
        [mine] = [c for c in self.forge.comments() if c["author"] == "labrador[bot]"]
        return mine["body"]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    origin = Origin(tmp_path / "origin.git", BASE)
    forge = MemoryForge({REPO: origin.path})
    settings = settings_for(tmp_path, maintainers_team="reviewers", dispatch_workflow="nightly.yml")
    state = SqliteState(tmp_path / "state.db")
    previewer = EchoPreviewer()
    return Env(origin, forge, Runner(settings, state, lambda job: forge, previewer), previewer, state, tmp_path)


def test_valid_push_succeeds_with_one_sticky_comment_and_labels(env: Env) -> None:
    sha = env.push(skill_files(NEW))
    env.run(VALIDATE, sha)
    [check] = env.forge.checks()
    assert (check["sha"], check["name"], check["status"], check["conclusion"]) == (sha, "Labrador", "completed",
                                                                                 "success")
    body = env.sticky()
    assert body.startswith(STICKY_MARKER) and "✅ Validation passed" in body and sha[:12] in body
    assert env.forge.data["labels"][f"{REPO}#1"] == ["skill"]
    assert env.state.open_checks() == []  # nothing left for the sweeper


def test_findings_become_annotations_on_exact_lines(env: Env) -> None:
    lines = (SKILL / "qna.yaml").read_text().split("\n")
    lines[0] = 'version: "3"'
    lines[2] += "   "
    sha = env.push(skill_files(NEW, "\n".join(lines).encode()))
    env.run(VALIDATE, sha)
    [check] = env.forge.checks()
    assert check["conclusion"] == "failure"
    where = {(a["start_line"], a["annotation_level"], a["title"]) for a in check["annotations"]}
    assert (1, "failure", "version") in where and (3, "warning", "trailing-spaces") in where
    assert all(a["path"] == f"taxonomy/{NEW}/qna.yaml" for a in check["annotations"])
    assert "❌ Validation failed" in env.sticky() and "Write version: 3 without quotes" in env.sticky()


def test_every_push_edits_the_same_sticky_comment(env: Env) -> None:
    # a contributor's comment that pretends to be ours is never the sticky one
    env.forge.create_comment(REPO, 1, STICKY_MARKER + "\nfake", author="mallory")
    first = env.push(skill_files(NEW))
    env.run(VALIDATE, first)
    second = env.push(skill_files(NEW, b"version: 3\n"), parent=first)
    env.run(VALIDATE, second)
    ours = [c for c in env.forge.comments() if c["author"] == "labrador[bot]"]
    assert len(ours) == 1 and ours[0]["edits"] == 1
    assert second[:12] in ours[0]["body"] and first[:12] not in ours[0]["body"]
    assert [c["body"] for c in env.forge.comments() if c["author"] == "mallory"] == [STICKY_MARKER + "\nfake"]


def test_a_job_for_an_old_head_opens_no_check(env: Env) -> None:
    old = env.push(skill_files(NEW))
    env.push(skill_files(NEW, b"version: 3\n"), parent=old)
    env.run(VALIDATE, old)
    assert env.forge.checks() == []


def test_preview_is_refused_without_write_access(env: Env) -> None:
    sha = env.push(skill_files(NEW))
    env.run(PREVIEW, sha, requester="stranger", command="/lab preview")
    assert env.previewer.calls == [] and env.forge.checks() == []
    assert "@stranger" in env.sticky() and "sorry, this command is for people with write access" in env.sticky()


def test_preview_runs_for_the_maintainers_team_and_shows_samples_beside_seeds(env: Env) -> None:
    sha = env.push(skill_files(NEW))
    env.run(VALIDATE, sha)
    env.forge.add_team_member("acme", "reviewers", "maria")
    env.run(PREVIEW, sha, requester="maria", command="/lab preview")
    assert env.previewer.calls == [f"{NEW}/qna.yaml"]
    preview = [c for c in env.forge.checks() if c["name"] == "Labrador preview"]
    assert [c["conclusion"] for c in preview] == ["success"]
    body = env.sticky()
    assert "✅ Validation passed" in body  # the other section stays
    assert "Preview for" in body and "requested by @maria" in body and "kept **2**" in body
    # (the summary is raw HTML: Markdown specials such as ":" are entities there, shown as the character)
    assert "<details><summary>Seeds (" in body and "Sample 1: Q&#58; Turn this table" in body


def test_preview_never_runs_on_a_head_pushed_after_the_command(env: Env) -> None:
    old = env.push(skill_files(NEW))
    new = env.push(skill_files(NEW, b"version: 3\n"), parent=old)
    env.forge.set_permission(REPO, "maria", "write")
    env.run(PREVIEW, old, requester="maria", command="/lab preview")
    assert env.previewer.calls == [] and env.forge.checks() == []
    body = env.sticky()
    assert f"your command was for `{old[:12]}`" in body and f"head is now `{new[:12]}`" in body


def test_a_command_with_no_known_head_asks_again_and_learns_the_head(env: Env) -> None:
    sha = env.push(skill_files(NEW))
    env.forge.set_permission(REPO, "maria", "admin")
    env.run(PREVIEW, "", requester="maria", command="/lab preview")
    assert env.previewer.calls == [] and "comment again" in env.sticky()
    assert env.state.head_at(REPO, 1, 2_000_000_000.0) == sha


def test_preview_skips_invalid_leaves_and_reports_teacher_failures(env: Env) -> None:
    sha = env.push({**skill_files(NEW), **skill_files("compositional_skills/bad/leaf", b"version: 3\n")})
    env.forge.set_permission(REPO, "maria", "maintain")
    env.previewer.fail = "teacher said <b>no</b> to @everyone"
    env.run(PREVIEW, sha, requester="maria", command="/lab preview")
    [check] = env.forge.checks()
    assert check["conclusion"] == "failure"
    body = env.sticky()
    assert "Not previewed: the leaf has validation errors" in body
    assert "teacher said &lt;b>no&lt;/b> to @\u200deveryone" in body


def test_retry_is_allowed_for_the_author_and_refused_for_others(env: Env) -> None:
    sha = env.push(skill_files(NEW), author="alice")
    env.run(RETRY, sha, requester="bob", command="/lab retry")
    assert env.forge.checks() == [] and "sorry" in env.sticky()
    env.run(RETRY, sha, requester="alice", command="/lab retry")
    assert [c["conclusion"] for c in env.forge.checks()] == ["success"]
    assert "sorry" not in env.sticky()  # a fresh result clears the old notice


def test_help_answers_in_the_sticky_comment(env: Env) -> None:
    env.push(skill_files(NEW))
    env.run(HELP, "", requester="bob", command="/lab dance")
    assert "/lab preview" in env.sticky() and len(env.forge.comments()) == 1


def test_merge_is_recorded_once_and_dispatches_the_nightly_workflow(env: Env) -> None:
    sha = env.push(skill_files(NEW))
    files = [ChangedFile(f"taxonomy/{NEW}/qna.yaml", "added"), ChangedFile("README.md", "modified"),
             ChangedFile("taxonomy/compositional_skills/a/one/qna.yaml", "removed")]
    env.forge.add_pr(pr_for(env.origin, 1, sha, state="closed"), files)
    env.run(MERGED, "c" * 40)
    env.run(MERGED, "c" * 40)  # a redelivery: no second record
    [record] = read_merges(env.runner.settings.merges_path)
    assert (record["repo"], record["pr"], record["merge_sha"]) == (REPO, 1, "c" * 40)
    assert record["leaves"] == [NEW] and record["deleted"] == ["compositional_skills/a/one"]
    assert env.forge.data["dispatches"] == [{"repo": REPO, "workflow": "nightly.yml", "ref": "main",
                                            "inputs": {"merge_sha": "c" * 40, "pr": "1"}}]
    json.dumps(record)


def test_a_force_push_during_the_fetch_cancels_the_check(env: Env) -> None:
    sha = env.push(skill_files(NEW))
    forced = env.origin.push_pr(1, {**BASE, "x": b"y"})  # the PR API still says ``sha``
    assert forced != sha
    env.run(VALIDATE, sha)
    [check] = env.forge.checks()
    assert check["conclusion"] == "cancelled"
