"""After a night, the contributor hears back: one comment per merged pull request whose leaves the night
trained, edited (never duplicated) on a rerun, escaped like every other comment; through the bot's forge
against the GitHub test server."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("github3")
from ghserver import GitHubServer  # noqa: E402

from labrador.bot.night_comments import MARKER, after_night, comment_body, pulls_for  # noqa: E402

REPO = "org/taxonomy"
HAIKU = "compositional_skills/writing/freeform/haiku"
SENRYU = "compositional_skills/writing/freeform/senryu"
HOSTILE = "compositional_skills/x_@everyone_<img src=x onerror=alert(1)>_#1|cell"
OTHER = "knowledge/history/printing_press"


def record(status: str = "promoted") -> dict:
    judged = {HAIKU: {"model": 7.5, "baseline": 5.0, "delta": 2.5, "questions": 3, "verdict": "improved"},
              SENRYU: {"model": 6.0, "baseline": 6.0, "delta": 0.0, "questions": 3, "verdict": "new"},
              HOSTILE: {"model": 2.0, "baseline": 4.0, "delta": -2.0, "questions": 1, "verdict": "regressed"}}
    return {"id": "night-0007", "status": status, "reason": "judged +0.17 on average @maintainers",
            "leaves_regenerated": [HAIKU, SENRYU, HOSTILE],
            "branch_eval": {"judge": "j", "model": "m", "baseline": "b", "judge_error_rate": 0.0, "leaves": judged}}


@pytest.fixture
def gh(github_server: GitHubServer) -> GitHubServer:
    github_server.state.create_repo(REPO, {"README.md": "taxonomy\n"})
    for leaf in (HAIKU, "compositional_skills/other", OTHER):
        github_server.state.open_pr(REPO, {f"taxonomy/{leaf.split('_@')[0]}/qna.yaml": "version: 3\n"}, user="alice")
    return github_server


def setup(gh: GitHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, app: bool = True) -> Path:
    merges = tmp_path / "merges.jsonl"
    rows = [{"repo": REPO, "pr": 1, "merge_sha": "a" * 40, "leaves": [HAIKU], "deleted": []},
            {"repo": REPO, "pr": 2, "merge_sha": "b" * 40, "leaves": [SENRYU, HOSTILE], "deleted": []},
            {"repo": REPO, "pr": 3, "merge_sha": "c" * 40, "leaves": [OTHER], "deleted": []}]  # not tonight's
    merges.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "labrador.toml"
    config.write_text(f'[bot]\napi_url = "{gh.api_url}"\nbot_login = "{gh.state.bot_login}"\n'
                      f'merges_file = "{merges}"\n' + (f'app_id = "{gh.app_id}"\n' if app else ""))
    if app:
        monkeypatch.setenv("LABRADOR_APP_PRIVATE_KEY", gh.private_key_pem.decode())
    return config


def nightly(**kw: str) -> SimpleNamespace:
    return SimpleNamespace(report_url=kw.get("report_url", ""), github_token_env=kw.get("github_token_env", ""))


def bot_comments(gh: GitHubServer, pr: int) -> list:
    return [c for c in gh.state.comments_on(REPO, pr) if c.body.startswith(MARKER)]


def test_one_comment_per_pull_request_edited_on_rerun(gh, tmp_path, monkeypatch):
    config = setup(gh, tmp_path, monkeypatch)
    said: list[str] = []
    after_night(record(), config, nightly(report_url="https://ci.example/nights/{id}"), said.append)
    first, second = bot_comments(gh, 1), bot_comments(gh, 2)
    assert len(first) == 1 and len(second) == 1 and bot_comments(gh, 3) == []  # PR 3's leaf was not trained
    assert "night-0007" in first[0].body and "was **promoted**" in first[0].body
    assert "5.00 → 7.50" in first[0].body and "+2.50" in first[0].body and "improved" in first[0].body
    assert "https://ci.example/nights/night-0007" in first[0].body
    assert "senryu" in second[0].body and "new" in second[0].body and "regressed" in second[0].body
    assert sorted(said) == [f"{REPO}#1: nightly comment created", f"{REPO}#2: nightly comment created"]

    after_night(record("rejected"), config, nightly(), said.append)  # a rerun (or the next night) edits
    assert len(bot_comments(gh, 1)) == 1 and len(bot_comments(gh, 2)) == 1
    assert "was **not promoted**" in bot_comments(gh, 1)[0].body
    assert said[-1].endswith("nightly comment edited")


def test_leaf_text_is_escaped(gh, tmp_path, monkeypatch):
    config = setup(gh, tmp_path, monkeypatch)
    after_night(record(), config, nightly(), lambda _: None)
    body = bot_comments(gh, 2)[0].body
    assert "<img" not in body and "@everyone" not in body and "@maintainers" not in body
    row = next(line for line in body.splitlines() if "regressed" in line)
    assert "\\|cell" in row and row.replace("\\|", "").count("|") == 5  # its pipe cannot open a table cell
    assert body.count(MARKER) == 1 and body.count("<!--") == 1  # nobody forges the marker


def test_a_token_from_the_environment_works_without_the_app(gh, tmp_path, monkeypatch):
    config = setup(gh, tmp_path, monkeypatch, app=False)
    monkeypatch.setenv("NIGHT_TOKEN", gh.installation_token("org"))
    after_night(record(), config, nightly(github_token_env="NIGHT_TOKEN"), lambda _: None)
    assert len(bot_comments(gh, 1)) == 1


def test_off_without_a_forge_and_for_unfinished_nights(gh, tmp_path, monkeypatch):
    config = setup(gh, tmp_path, monkeypatch, app=False)
    after_night(record(), config, nightly(), lambda _: None)  # no App, no token: comments are off
    config = setup(gh, tmp_path, monkeypatch)
    after_night(record("failed"), config, nightly(), lambda _: None)
    assert bot_comments(gh, 1) == [] and bot_comments(gh, 2) == []


def test_pulls_for_groups_tonights_leaves_by_pull_request():
    merges = [{"repo": REPO, "pr": 2, "leaves": [HAIKU]}, {"repo": REPO, "pr": 2, "leaves": [SENRYU]},
              {"repo": REPO, "pr": 5, "leaves": [OTHER]}]
    assert pulls_for(record(), merges) == {(REPO, 2): [HAIKU, SENRYU]}
    assert "not judged" in comment_body({"id": "n", "status": "promoted"}, [HAIKU])


def test_the_nightly_job_reaches_the_bot_through_its_hook(gh, tmp_path, monkeypatch):
    from importlib.metadata import entry_points

    from labrador.trainer.nightly.night import Night, run_hooks
    from labrador.trainer.nightly.settings import NightlySettings
    from labrador.trainer.teachers.config import TeacherSettings
    from labrador.validators import Config

    assert "labrador.bot.night_comments:after_night" in {ep.value for ep in entry_points(group="labrador.night_hooks")}
    config = setup(gh, tmp_path, monkeypatch)
    said: list[str] = []
    night = Night(tmp_path, tmp_path / "state", NightlySettings(base_model="x"), TeacherSettings(), Config(),
                  say=said.append, config=config)
    run_hooks(night, record())
    assert len(bot_comments(gh, 1)) == 1 and f"{REPO}#1: nightly comment created" in said


def test_a_bad_merge_line_or_a_failing_pull_request_silences_no_other_comment(gh, tmp_path, monkeypatch):
    """Issue 29.10: a line that is not a record is skipped and counted; one pull request whose comment fails
    with the client library's own error (PR 99 does not exist: github3's NotFoundError) is its own line."""
    config = setup(gh, tmp_path, monkeypatch)
    merges = tmp_path / "merges.jsonl"
    lines = merges.read_text().splitlines()
    bad = json.dumps({"repo": REPO, "pr": 99, "merge_sha": "d" * 40, "leaves": [HAIKU], "deleted": []})
    merges.write_text("\n".join([bad, "{torn", lines[0], '["a list"]', *lines[1:], '{"pr": "x", "leaves": 3}']) + "\n")
    said: list[str] = []
    after_night(record(), config, nightly(), said.append)
    assert len(bot_comments(gh, 1)) == 1 and len(bot_comments(gh, 2)) == 1
    assert any("2 unreadable merge record(s) skipped (line 2, 4)" in s for s in said), said
    assert any(s.startswith(f"{REPO}#99: nightly comment error:") for s in said), said


def test_an_error_that_echoes_the_token_is_scrubbed():
    """Issue 29.16: whatever an error echoes, the token never reaches the night's output."""
    from labrador.bot.night_comments import post

    class EchoingForge:
        token = "ghs_" + "s3cret" * 6

        def find_comment(self, *args: object) -> None:
            raise RuntimeError(f"401 for Authorization: token {self.token}")

        def scrub(self, text: str) -> str:
            return text.replace(self.token, "***")

    results = post(record(), [{"repo": REPO, "pr": 1, "leaves": [HAIKU]}], EchoingForge(), "bot")  # type: ignore
    assert results == [(REPO, 1, "error: RuntimeError: 401 for Authorization: token ***")]


def test_the_comment_shows_the_leafs_held_out_seeds_base_parent_and_tonight():
    """Issue 30.6: the contributor sees, per leaf, whether tonight's model does better on questions it never saw."""
    rec = {**record(), "heldout": {"leaves": {HAIKU: {"ref_nll": {"base": 4.713, "parent": 4.2327, "candidate": 4.0325,
                                                                 "delta": -0.2002}}}}}
    body = comment_body(rec, [HAIKU, SENRYU])
    row = next(line for line in body.splitlines() if "4\\.713" in line or "4.713" in line)
    assert "4.713" in row.replace("\\", "") and "4.032" in row.replace("\\", "") and "+0.200" in row.replace("\\", "")
    assert "held-out seeds" in body and body.count("senryu") == 1  # only measured leaves get a held-out row
