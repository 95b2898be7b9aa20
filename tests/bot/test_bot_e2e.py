"""The bot end to end, with real components only, on loopback.

GitHub is the spec-validated test server (``tests/ghserver``); deliveries are signed by it and POSTed to the
bot's real webhook app under uvicorn; jobs go through the real SQLite queue to the real worker and runner;
the real ``GitHubForge`` (github3.py) talks to the server, and git fetches the PR head over smart HTTP.
Previews use a real (tiny, local) transformers teacher. Nothing here is mocked.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2ekit import (
    ATTRIBUTION,
    BROKEN,
    BROKEN_LINES,
    FIXED,
    NEW_DIR,
    NEW_PATH,
    REPO,
    TWO_LEAVES,
    VALID,
    VALID_PATH,
    Bot,
    annotated,
    comment,
    open_pr,
    runs,
    start_worker,
    sticky,
    stop,
    wait_for,
)
from ghserver import (
    GitHubServer,
    example_events,
    rewrite_example,
    webhook_example,
)

from labrador.bot.merges import read_merges
from labrador.bot.preview import PreviewResult, TrainerPreviewer
from labrador.trainer.teachers.config import TeacherSettings


def test_pr_with_a_bad_leaf_fails_on_its_lines_then_a_fixing_push_passes(gh: GitHubServer, bot: Bot) -> None:
    pr = open_pr(gh, TWO_LEAVES)
    first = pr.head_sha
    reply = bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert reply.status_code == 202 and reply.json()["status"] == "queued"
    assert bot.work() == 1

    [run] = runs(gh, first)
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert annotated(run) == {(NEW_PATH, line, "failure") for line in BROKEN_LINES}
    assert {a["title"] for a in run.annotations} == {"schema"}
    assert run.external_id and run.title.startswith("2 error(s)")
    note = sticky(gh, pr.number)
    assert "Validation failed" in note.body and first[:12] in note.body and note.edits == []
    assert "senryu" in note.body and "unknown_key" in note.body  # findings shown (an intraword _ needs no escape)
    assert gh.state.labels_on(REPO, pr.number) == ["foundational", "skill"]

    gh.state.push_to_pr(REPO, pr.number, {NEW_PATH: FIXED}, message="Fix the senryu leaf")
    second = gh.state.pull(REPO, pr.number).head_sha
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "synchronize"))
    assert bot.work() == 1

    [fixed] = runs(gh, second)
    assert (fixed.status, fixed.conclusion, fixed.annotations) == ("completed", "success", [])
    assert runs(gh, first) == [run] and run.conclusion == "failure"  # the old head keeps its verdict
    edited = sticky(gh, pr.number)  # still exactly one bot comment: the same one, edited in place
    assert edited.id == note.id and len(edited.edits) == 1
    assert "Validation passed" in edited.body and second[:12] in edited.body and "unknown" not in edited.body
    assert gh.state.labels_on(REPO, pr.number) == ["foundational", "skill"]
    # the bot never sent an annotation twice: GitHub appends them on every PATCH
    sent = [a for r in (run, fixed) for h in r.history for a in (h["body"].get("output") or {}).get("annotations", [])]
    assert len(sent) == len(BROKEN_LINES)


MANY = FIXED.replace(b"version: 3\n", b"version: 3\n" + b"".join(b"extra_%02d: 1\n" % i for i in range(60)))


@pytest.mark.parametrize(("leaf", "lines", "lost"), [(BROKEN, BROKEN_LINES, 1), (MANY, set(range(2, 62)), 1),
                                                     (MANY, set(range(2, 62)), 2)],
                         ids=["one-batch", "60-first-batch-lost", "60-last-batch-lost"])
def test_a_lost_check_run_response_does_not_duplicate_annotations(gh: GitHubServer, bot: Bot, leaf: bytes,
                                                                  lines: set[int], lost: int) -> None:
    """GitHub applied a PATCH (annotations in batches of 50, the last one completing the run), but the bot saw
    a 500; the retry must not send the same annotations again: GitHub appends every one it receives."""
    pr = open_pr(gh, {NEW_PATH: leaf, f"{NEW_DIR}/attribution.txt": ATTRIBUTION})
    seen: list[int] = []

    def lose(body: Any) -> Any:  # the `lost`-th PATCH lands, then its answer is broken (a 500 for the bot)
        seen.append(1)
        return {"id": "not a number"} if len(seen) == lost else None

    gh.state.inject_fault(rf"/repos/{REPO}/check-runs/\d+", method="PATCH", status=None, times=lost, mutate=lose)
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 2  # the job, then its retry
    assert len(seen) == lost
    gh.state.errors.clear()  # the spec violation we provoked on purpose
    [run] = runs(gh, pr.head_sha)
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert sorted(a["start_line"] for a in run.annotations) == sorted(lines)  # each exactly once
    assert "Validation failed" in sticky(gh, pr.number).body


# -- 3: /lab preview, by a maintainer and by an outsider --------------------------------------------------------


class CountingPreviewer(TrainerPreviewer):
    """The production previewer (real teacher, real generator), counting the leaves it was asked for."""

    calls: list[str]

    async def preview(self, leaf_relpath: str, leaf_bytes: bytes, documents: Any, report: Any = None
                      ) -> PreviewResult:
        self.calls.append(leaf_relpath)
        return await super().preview(leaf_relpath, leaf_bytes, documents, report=report)


def previewing_bot(make_bot: Callable[..., Bot], model_dir: Path, samples: int = 2) -> tuple[Bot, CountingPreviewer]:
    bot = make_bot(teacher=TeacherSettings(spec=str(model_dir)), preview_samples=samples)
    previewer = CountingPreviewer(TeacherSettings(spec=str(model_dir)), samples)
    previewer.calls = []
    bot.previewer = previewer
    return bot, previewer


def test_lab_preview_runs_for_a_maintainer_and_is_refused_to_an_outsider(
        gh: GitHubServer, make_bot: Callable[..., Bot], tiny_model_dir: Path) -> None:
    bot, previewer = previewing_bot(make_bot, tiny_model_dir)
    pr = open_pr(gh, {NEW_PATH: FIXED, f"{NEW_DIR}/attribution.txt": ATTRIBUTION})
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1

    asked = comment(gh, pr.number, "Looks good.\n/lab preview\n", "outsider")
    bot.deliver("issue_comment", gh.issue_comment_event(asked))
    assert bot.work() == 1
    body = sticky(gh, pr.number).body
    assert "@outsider" in body and "sorry, this command is for people with write access" in body
    assert previewer.calls == [] and runs(gh, pr.head_sha, "Labrador preview") == []

    asked = comment(gh, pr.number, "/lab preview", "maintainer")
    bot.deliver("issue_comment", gh.issue_comment_event(asked))
    assert bot.work() == 1
    assert previewer.calls == ["compositional_skills/writing/freeform/senryu/qna.yaml"]
    [run] = runs(gh, pr.head_sha, "Labrador preview")
    assert run.status == "completed" and run.conclusion in ("success", "neutral"), (run.conclusion, run.summary)
    note = sticky(gh, pr.number)
    body = note.body
    assert "sorry" not in body  # the refusal notice was replaced
    assert f"Preview for `{pr.head_sha[:12]}`, requested by @maintainer" in body
    assert "#### compositional_skills/writing/freeform/senryu/qna.yaml" in body
    stats = next(line for line in body.splitlines() if line.startswith("generated **"))
    generated, kept = int(stats.split("**")[1]), int(stats.split("**")[3])
    assert generated >= kept and " · kept **" in stats  # the yield: candidates, then what was kept
    assert " · dropped: " in stats and stats.endswith(" s")  # per-leaf counts and timing
    assert "<summary>Seeds (6)</summary>" in body  # the seeds beside the samples
    if kept:  # the tiny random model rarely survives the judges; if it did, the samples are shown inline
        assert body.count("<summary>Sample ") == kept
    else:
        assert "_No sample passed the filters._" in body and "dropped: none" not in stats
    assert "Validation passed" in body  # the validation section is kept beside the preview


# -- 4: forged signatures and replayed deliveries ----------------------------------------------------------------


def test_forged_signature_is_refused_and_a_replayed_delivery_runs_once(gh: GitHubServer, bot: Bot) -> None:
    pr = open_pr(gh, TWO_LEAVES)
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1
    before = sticky(gh, pr.number)
    edits, body_before = len(before.edits), before.body  # (the server's record is live)
    gh.state.push_to_pr(REPO, pr.number, {NEW_PATH: FIXED})
    headers, body = gh.delivery("pull_request", gh.pull_request_event(REPO, pr.number, "synchronize"))

    forged = [{**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64},
              {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}]
    for bad in forged:
        assert bot.post(bad, body).status_code == 401
    assert bot.post(headers, body.replace(b'"synchronize"', b'"opened"')).status_code == 401  # tampered body
    assert bot.web_queue.pending() == [] and bot.web_queue.huey.pending_count() == 0

    first = bot.post(headers, body)  # the forgeries did not burn the delivery id
    again = bot.post(headers, body)
    assert first.status_code == 202 and first.json()["status"] == "queued"
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "delivery": headers["X-GitHub-Delivery"]}
    assert len(bot.web_queue.pending()) == 1
    assert bot.work() == 1
    after = sticky(gh, pr.number)
    assert after.id == before.id and len(after.edits) == edits + 1 and after.edits[-1] == body_before
    assert len(runs(gh, gh.state.pull(REPO, pr.number).head_sha)) == 1


# -- 5: a worker process killed mid-job -----------------------------------------------------------------------------


SLOW_S = 5.0


def test_a_worker_killed_mid_job_leaves_no_check_run_in_progress(gh: GitHubServer, bot: Bot,
                                                                 tmp_path: Path) -> None:
    pr = open_pr(gh, TWO_LEAVES)
    slow_fetch = gh.state.inject_fault(r"/org/taxonomy\.git/.*", status=None, delay=SLOW_S)  # git answers slowly
    doomed = start_worker(gh, bot, tmp_path / "worker-1.log")
    try:
        bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
        wait_for(lambda: slow_fetch.hits == 1, what="the worker to be mid-fetch")
        slow_until = time.monotonic() + SLOW_S
        [orphan] = runs(gh, pr.head_sha)
        assert orphan.status == "in_progress"
    finally:
        stop(doomed, signal.SIGKILL)
    time.sleep(0.2)
    [orphan] = runs(gh, pr.head_sha)
    assert orphan.status == "in_progress"  # what upstream's bot left behind forever

    recovered = start_worker(gh, bot, tmp_path / "worker-2.log")  # sweeps at start, then runs the job again
    try:
        done = wait_for(lambda: (rs := runs(gh, pr.head_sha)) and len(rs) == 2 and all(r.status == "completed"
                        for r in rs) and not bot.web_queue.state.open_checks() and rs, what="both check runs to end")
    finally:
        stop(recovered, signal.SIGINT)  # hands a running job back to the queue at once (SIGTERM: after a grace)
    first, second = done
    assert (first.id, first.conclusion, first.title) == (orphan.id, "timed_out", "Worker lost")
    assert "queued again" in first.summary
    assert second.conclusion == "failure" and annotated(second) == {(NEW_PATH, n, "failure") for n in BROKEN_LINES}
    assert bot.web_queue.state.open_checks() == []
    sticky(gh, pr.number)
    assert "Traceback" not in (tmp_path / "worker-2.log").read_text()
    time.sleep(max(0.0, slow_until - time.monotonic()))  # let the server answer the dead worker's fetch


# -- 6: a command written before a push, processed after it ----------------------------------------------------------


def test_a_command_for_an_older_head_does_not_run_on_the_new_one(
        gh: GitHubServer, make_bot: Callable[..., Bot], tiny_model_dir: Path) -> None:
    bot, previewer = previewing_bot(make_bot, tiny_model_dir)
    pr = open_pr(gh, {NEW_PATH: FIXED, f"{NEW_DIR}/attribution.txt": ATTRIBUTION}, age_s=60)
    old = pr.head_sha
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1

    asked = comment(gh, pr.number, "/lab preview", "maintainer", age_s=30)  # written while `old` was the head
    gh.state.push_to_pr(REPO, pr.number, {NEW_PATH: FIXED.replace(b"senryu-style", b"unreviewed")})
    new = gh.state.pull(REPO, pr.number).head_sha
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "synchronize"))
    bot.deliver("issue_comment", gh.issue_comment_event(asked))  # ... delivered after the push
    assert [j.sha for j in bot.web_queue.pending()] == [new, old]  # the command is bound to the head it saw
    assert bot.work() == 2

    assert previewer.calls == [] and runs(gh, new, "Labrador preview") == runs(gh, old, "Labrador preview") == []
    body = sticky(gh, pr.number).body
    assert f"your command was for `{old[:12]}`, but the pull request head is now `{new[:12]}`" in body
    assert "I did not run it on the newer, unreviewed commit" in body and "@maintainer" in body


# -- 7: merge ---------------------------------------------------------------------------------------------------


def test_a_merge_is_recorded_for_the_nightly_job_and_dispatches_its_workflow(gh: GitHubServer, bot: Bot) -> None:
    pr = open_pr(gh, {VALID_PATH: VALID, NEW_PATH: FIXED, f"{NEW_DIR}/attribution.txt": ATTRIBUTION,
                      "taxonomy/knowledge/history/printing_press/qna.yaml": None,
                      "taxonomy/knowledge/history/printing_press/attribution.txt": None})
    merged = gh.state.close_pr(REPO, pr.number, merge=True)
    event = gh.pull_request_event(REPO, pr.number, "closed")
    assert event["pull_request"]["merged"] is True
    bot.deliver("pull_request", event)
    assert bot.work() == 1
    again = bot.deliver("pull_request", event)  # the same signed body under a new delivery id ...
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert bot.work() == 0  # ... queues and records nothing twice

    [record] = read_merges(bot.settings.merges_path)
    assert record["repo"] == REPO and record["pr"] == pr.number and record["merge_sha"] == merged.merge_commit_sha
    assert record["leaves"] == ["compositional_skills/writing/freeform/senryu",
                                "foundational_skills/reasoning/logic/syllogisms"]
    assert record["deleted"] == ["knowledge/history/printing_press"]
    [dispatch] = gh.state.dispatches_for(REPO)
    assert (dispatch.kind, dispatch.workflow_id, dispatch.ref) == ("workflow", "nightly.yml", "main")
    assert dispatch.inputs == {"merge_sha": merged.merge_commit_sha, "pr": str(pr.number)}

    closed = open_pr(gh, {VALID_PATH: VALID})  # closed without merging: nothing to record
    gh.state.close_pr(REPO, closed.number)
    reply = bot.deliver("pull_request", gh.pull_request_event(REPO, closed.number, "closed"))
    assert reply.json()["status"].startswith("ignored")
    assert len(read_merges(bot.settings.merges_path)) == 1


# -- 8: GitHub's own recorded payloads ------------------------------------------------------------------------------


def test_every_recorded_webhook_example_is_acknowledged(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot("examples")
    answers: dict[int, list[str]] = {}
    for event, actions in example_events().items():
        for action in dict.fromkeys(actions):
            headers, body = bot.gh.delivery(event, webhook_example(event, action))
            status = bot.post(headers, body).status_code
            answers.setdefault(status, []).append(f"{event}.{action}")
    assert set(answers) <= {200, 202}, {k: v[:5] for k, v in answers.items() if k not in (200, 202)}
    assert {"pull_request.opened", "pull_request.synchronize", "pull_request.reopened"} <= set(answers[202])
    assert "ping.None" in answers[200]


def test_a_recorded_payload_rewritten_to_our_repository_is_processed(gh: GitHubServer, bot: Bot) -> None:
    pr = open_pr(gh, TWO_LEAVES)
    repository = {"name": "taxonomy", "full_name": REPO, "owner": {"login": "org"}, "default_branch": "main",
                  "clone_url": gh.git_url(REPO)}
    recorded = webhook_example("pull_request", "reopened")
    payload = rewrite_example(recorded, repository=repository, number=pr.number, head_sha=pr.head_sha,
                              installation_id=gh.installation_id("org"))
    assert payload["pull_request"]["title"] == recorded["pull_request"]["title"]  # the rest is GitHub's recording
    reply = bot.deliver("pull_request", payload)
    assert reply.status_code == 202
    assert bot.work() == 1
    [run] = runs(gh, pr.head_sha)
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert annotated(run) == {(NEW_PATH, line, "failure") for line in BROKEN_LINES}

    said = webhook_example("issue_comment", "created")  # (recorded on an issue: we make it a PR's)
    issue = {"pull_request": {"url": f"{gh.api_url}/repos/{REPO}/pulls/{pr.number}", "html_url": None,
                              "diff_url": None, "patch_url": None}}
    payload = rewrite_example(said, repository=repository, issue=issue, number=pr.number,
                              installation_id=gh.installation_id("org"),
                              comment={"body": "/lab help", "user": {"login": "outsider", "type": "User"}})
    assert payload["comment"]["id"] == said["comment"]["id"] and payload["sender"] == said["sender"]
    bot.deliver("issue_comment", payload)
    assert bot.work() == 1
    body = sticky(gh, pr.number).body
    assert "@outsider" in body and "`/lab preview` generates a few synthetic samples" in body


def test_changed_non_leaf_folders_never_hide_a_broken_leaf(gh: GitHubServer, bot: Bot) -> None:
    """300 changed non-leaf folders used to use up the bot's leaf limit: the broken leaf went unchecked and
    the check was green. Only leaves count now, and nothing unchecked can pass."""
    files = {f"taxonomy/aaa/f{i:03d}/notes.txt": b"notes\n" for i in range(300)}
    files.update({NEW_PATH: BROKEN, f"{NEW_DIR}/attribution.txt": ATTRIBUTION})
    pr = open_pr(gh, files)
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1
    [run] = runs(gh, pr.head_sha)
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert annotated(run) == {(NEW_PATH, line, "failure") for line in BROKEN_LINES}


def _spoil(payload: dict, path: str, value: Any) -> dict:
    import copy

    out = copy.deepcopy(payload)
    *head, last = path.split(".")
    node = out
    for key in head:
        node = node[key]
    node[last] = value
    return out


@pytest.mark.parametrize(("event", "path", "value"), [
    ("pull_request", "installation.id", "abc"),
    ("pull_request", "repository", "org/taxonomy"),
    ("pull_request", "pull_request.head", "main"),
    ("pull_request", "pull_request.number", 2**70),
    ("pull_request", "pull_request.number", True),
    ("pull_request", "pull_request.updated_at", 12345),
    ("issue_comment", "comment.body", 5),
    ("issue_comment", "comment.id", "x"),
    ("issue_comment", "comment.user", "maintainer"),
])
def test_signed_but_malformed_payloads_get_400_and_queue_nothing(gh: GitHubServer, bot: Bot, caplog, event: str,
                                                                  path: str, value: Any) -> None:
    pr = open_pr(gh, TWO_LEAVES)
    if event == "pull_request":
        payload = gh.pull_request_event(REPO, pr.number, "opened")
    else:
        payload = gh.issue_comment_event(comment(gh, pr.number, "/lab preview", "maintainer"))
    caplog.set_level("WARNING", logger="labrador.bot.webhook")
    reply = bot.post(*gh.delivery(event, _spoil(payload, path, value)))
    assert reply.status_code == 400 and path.split(".")[-1] in reply.text
    assert bot.work() == 0 and runs(gh, pr.head_sha) == []
    assert sum("rejected delivery" in r.getMessage() for r in caplog.records) == 1
    assert not any(r.exc_info for r in caplog.records)


def test_json_nested_100000_deep_is_refused_without_a_traceback(gh: GitHubServer, bot: Bot) -> None:
    body = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    import hashlib
    import hmac as hmac_mod

    sig = "sha256=" + hmac_mod.new(gh.webhook_secret.encode() if isinstance(gh.webhook_secret, str)
                                   else gh.webhook_secret, body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "deep-1", "X-Hub-Signature-256": sig,
               "Content-Type": "application/json"}
    reply = bot.post(headers, body)
    assert reply.status_code in (400, 413)


def test_an_outsiders_pending_command_does_not_swallow_a_maintainers(
        gh: GitHubServer, make_bot: Callable[..., Bot], tiny_model_dir: Path) -> None:
    """Both comments arrive while the worker is busy: the maintainer's preview still runs."""
    bot, previewer = previewing_bot(make_bot, tiny_model_dir)
    pr = open_pr(gh, {NEW_PATH: FIXED, f"{NEW_DIR}/attribution.txt": ATTRIBUTION})
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1
    for who in ("outsider", "maintainer"):
        reply = bot.deliver("issue_comment", gh.issue_comment_event(comment(gh, pr.number, "/lab preview", who)))
        assert reply.json()["status"] == "queued" and reply.json()["coalesced"] == 0
    assert bot.work() == 2
    assert previewer.calls == ["compositional_skills/writing/freeform/senryu/qna.yaml"]
    [run] = runs(gh, pr.head_sha, "Labrador preview")
    assert run.status == "completed"


def test_a_revoked_installation_token_is_dropped_and_fetched_again(gh: GitHubServer, bot: Bot) -> None:
    pr = open_pr(gh, TWO_LEAVES)
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
    assert bot.work() == 1 and len(runs(gh, pr.head_sha)) == 1
    gh.state.expire_tokens()  # GitHub no longer accepts the token the bot has cached
    gh.state.push_to_pr(REPO, pr.number, {NEW_PATH: FIXED}, message="Fix the senryu leaf")
    second = gh.state.pull(REPO, pr.number).head_sha
    bot.deliver("pull_request", gh.pull_request_event(REPO, pr.number, "synchronize"))
    assert bot.work() == 1
    [run] = runs(gh, second)
    assert (run.status, run.conclusion) == ("completed", "success")
