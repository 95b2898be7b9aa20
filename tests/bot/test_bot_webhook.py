"""The webhook app over real HTTP on loopback (uvicorn in a thread): signatures, replays, size limit, routing."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from botkit import SECRET, settings_for
from loopback import free_port

from labrador.bot import webhook
from labrador.bot.jobs import HELP, MERGED, PREVIEW, RETRY, VALIDATE
from labrador.bot.queue import JobQueue
from labrador.bot.routing import parse_command
from labrador.bot.worker import build_app

HEAD = "a" * 40
NEWER = "b" * 40


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def pr_event(action: str = "opened", sha: str = HEAD, number: int = 7, updated: str = "2024-05-01T12:00:00Z",
             **extra: Any) -> dict[str, Any]:
    pr = {"number": number, "head": {"sha": sha, "ref": "feature"}, "base": {"ref": "main"}, "updated_at": updated}
    pr.update(extra)
    return {"action": action, "number": number, "pull_request": pr, "installation": {"id": 42},
            "repository": {"full_name": "acme/taxonomy", "default_branch": "main"}}


def comment_event(body: str, created: str, login: str = "maria", number: int = 7, kind: str = "User"
                  ) -> dict[str, Any]:
    return {"action": "created", "issue": {"number": number, "pull_request": {"url": "x"}},
            "comment": {"id": 555, "body": body, "created_at": created, "user": {"login": login, "type": kind}},
            "repository": {"full_name": "acme/taxonomy"}, "installation": {"id": 42}}


class Server:
    """uvicorn serving the real app on a loopback port, and a client that posts signed deliveries."""

    def __init__(self, tmp: Path, **overrides: Any) -> None:
        self.settings = settings_for(tmp, **overrides)
        self.queue = JobQueue(self.settings)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(build_app(self.settings, self.queue), host="127.0.0.1", port=port,
                                log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def post(self, payload: Any, event: str = "pull_request", delivery: str | None = "d-1",
             signature: str | None = "auto", raw: bytes | None = None) -> httpx.Response:
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {"X-GitHub-Event": event, "Content-Type": "application/json"}
        if delivery is not None:
            headers["X-GitHub-Delivery"] = delivery
        if signature == "auto":
            signature = sign(body)
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return self.client.post("/webhook", content=body, headers=headers)

    def close(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path)
    yield server
    server.close()


def test_good_signature_queues_one_job_and_answers_202(srv: Server) -> None:
    r = srv.post(pr_event())
    assert r.status_code == 202, r.text
    jobs = srv.queue.pending()
    assert [(j.kind, j.repo, j.pr, j.sha, j.installation, j.delivery) for j in jobs] == [
        (VALIDATE, "acme/taxonomy", 7, HEAD, 42, "d-1")]
    assert "token" not in json.dumps(jobs[0].to_dict()).lower()  # jobs carry no secrets
    assert srv.queue.runner is None  # the web process only enqueues: the work happens in a worker


@pytest.mark.parametrize("signature", [None, "", "sha256=" + "0" * 64, "sha1=abc", sign(b"other body"),
                                       sign(b'{"x": 1}', "wrong-secret")])
def test_forged_or_missing_signature_is_401_and_queues_nothing(srv: Server, signature: str | None) -> None:
    r = srv.post(pr_event(), signature=signature)
    assert r.status_code == 401
    assert srv.queue.pending() == []


def test_signature_is_compared_in_constant_time(srv: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhook.hmac, "compare_digest", spy)
    assert srv.post(pr_event()).status_code == 202
    assert srv.post(pr_event(), delivery="d-2", signature="sha256=" + "1" * 64).status_code == 401
    assert len(seen) == 2


def test_signature_covers_the_raw_bytes_not_reserialized_json(srv: Server) -> None:
    raw = b'{"zen": "x",   "hook_id": 1,\n "repository": {"full_name": "acme/taxonomy"}}'
    assert srv.post(None, event="ping", raw=raw, signature=sign(raw)).status_code == 200
    assert srv.post(None, event="ping", raw=raw, delivery="d-2",
                    signature=sign(json.dumps(json.loads(raw)).encode())).status_code == 401


def test_replayed_delivery_is_a_duplicate_and_queues_nothing_more(srv: Server) -> None:
    assert srv.post(pr_event(), delivery="same").status_code == 202
    r = srv.post(pr_event(), delivery="same")
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert len(srv.queue.pending()) == 1


def test_replay_protection_survives_a_restart(tmp_path: Path) -> None:
    first = Server(tmp_path)
    try:
        assert first.post(pr_event(), delivery="kept").status_code == 202
    finally:
        first.close()
    second = Server(tmp_path)
    try:
        assert second.post(pr_event(), delivery="kept").json()["status"] == "duplicate"
    finally:
        second.close()


def test_a_captured_body_replayed_under_a_new_id_is_the_same_delivery(srv: Server) -> None:
    """The id is not covered by the signature: the signed body's hash recognises the replay."""
    assert srv.post(pr_event(), delivery="one").status_code == 202
    r = srv.post(pr_event(), delivery="two")
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert len(srv.queue.pending()) == 1


def test_a_signed_delivery_without_an_id_is_refused(srv: Server) -> None:
    r = srv.post(pr_event(), delivery="")
    assert r.status_code == 400 and "X-GitHub-Delivery" in r.text
    assert srv.queue.pending() == []


def test_body_over_the_limit_is_413_before_any_parsing(tmp_path: Path) -> None:
    srv = Server(tmp_path, max_body_bytes=1024)
    try:
        big = json.dumps(pr_event(title="x" * 5000)).encode()
        assert srv.post(None, raw=big).status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed size is what counts
            for i in range(0, len(big), 256):
                yield big[i:i + 256]

        r = srv.client.post("/webhook", content=chunks(), headers={"X-Hub-Signature-256": sign(big),
                                                                   "X-GitHub-Event": "pull_request"})
        assert r.status_code == 413
        assert srv.queue.pending() == []
    finally:
        srv.close()


def test_verified_garbage_is_400(srv: Server) -> None:
    assert srv.post(None, raw=b"not json").status_code == 400
    assert srv.post(None, raw=b"[1, 2]", delivery="d-2").status_code == 400


def test_healthz(srv: Server) -> None:
    assert srv.client.get("/healthz").text == "ok"


def test_unsigned_app_refuses_to_start(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    from dataclasses import replace

    from labrador.bot.config import Secret

    with pytest.raises(ValueError, match="WEBHOOK_SECRET"):
        build_app(replace(settings, webhook_secret=Secret("")))


def test_command_binds_to_the_head_known_when_the_comment_was_written(srv: Server) -> None:
    srv.post(pr_event("opened", HEAD, updated="2024-05-01T12:00:00Z"), delivery="p1")
    srv.post(pr_event("synchronize", NEWER, updated="2024-05-01T13:00:00Z"), delivery="p2")
    # written between the two pushes, delivered after the second: bound to the first head
    srv.post(comment_event("/lab preview", "2024-05-01T12:30:00Z"), event="issue_comment", delivery="c1")
    srv.post(comment_event("please\n/lab preview\n", "2024-05-01T13:30:00Z"), event="issue_comment", delivery="c2")
    srv.post(comment_event("/lab preview", "2024-05-01T11:00:00Z"), event="issue_comment", delivery="c3")
    previews = [j for j in srv.queue.pending() if j.kind == PREVIEW]
    assert [(j.sha, j.requester, j.comment_id) for j in previews] == [(HEAD, "maria", 555), (NEWER, "maria", 555),
                                                                      ("", "maria", 555)]


def test_comments_that_are_not_commands_are_ignored(srv: Server) -> None:
    for i, (body, kind) in enumerate([("> /lab preview", "User"), ("nice work", "User"),
                                      ("/lab preview", "Bot"), ("`/lab preview`", "User")]):
        r = srv.post(comment_event(body, "2024-05-01T12:30:00Z", kind=kind), event="issue_comment",
                     delivery=f"c{i}")
        assert r.status_code == 200, body
    assert srv.queue.pending() == []
    srv.post(comment_event("/lab dance", "2024-05-01T12:30:00Z"), event="issue_comment", delivery="c9")
    assert [j.kind for j in srv.queue.pending()] == [HELP]


CITED = [  # a /lab line in a code block, a quote or an HTML comment: someone citing it, not running it
    "```\n/lab preview\n```",
    "~~~\n/lab preview\n~~~",
    "Try this:\n\n```text\n/lab retry\n```\n",
    "````md\n```\n/lab preview\n```\n````",  # a shorter fence inside does not close the block
    "~~~\n```\n/lab preview\n",  # backticks do not close a ~~~ block
    "```\n/lab preview",  # an unclosed fence runs to the end of the comment
    "   ~~~~\n/lab preview\n   ~~~~",
    "> /lab preview",
    ">/lab preview",
    "   > /lab retry",
    ">> /lab preview",
    "> you wrote:\n/lab preview",  # a lazy continuation line is still part of the quote
    "> ```\n> /lab preview\n> ```",
    "Thanks!\r\n\r\n> /lab preview\r\n",
    # indented code blocks: 4+ spaces or a tab before it (also in a list item's text: simple and safe)
    "    /lab preview",
    "Run:\n\n    /lab preview\n",
    "\t/lab retry",
    "  \t/lab preview",
    "        /lab preview",
    "- item\n\n    /lab preview",
    # HTML comments: hidden on GitHub (PR templates use them for instructions)
    "<!-- /lab preview -->",
    "<!--\n/lab preview\n-->",
    "<!-- Comment `/lab preview` to get samples:\n/lab preview\n-->\nThanks!",
    "Looks good <!-- but first\n/lab retry\n-->",
    "<!--\n\n/lab preview\n\n-->",  # blank lines do not end a comment
    "<!--\n/lab preview",  # an unclosed comment hides the rest
    "<!--\n```\n-->\n<!--\n/lab preview\n```\n-->",  # a fence inside a comment opens nothing
    "   <!--\r\n/lab preview\r\n-->\r\n",
    "<!-- a --> <!--\n/lab preview\n-->",  # the second comment on a line is open at its end
    "<!-- x -->/lab preview",  # a line touched by a comment does not count
    "/lab preview<!-- x -->",
    "```\n<!--\n```\n<!--\n/lab preview\n-->",
    "<pre>\n/lab preview\n</pre>",  # an HTML <pre> block shows text
    "<PRE class=\"x\">/lab preview</PRE>",
    "<code>\n/lab retry\n</code>",
]
LIVE = [  # what is left outside them still counts
    ("```\nsome code\n```\n/lab preview", PREVIEW, "/lab preview"),
    ("> /lab preview\n\n/lab retry", RETRY, "/lab retry"),
    ("~~~\n~~~\n/lab preview", PREVIEW, "/lab preview"),
    ("```yaml\nx: 1\n   ```   \n/lab retry", RETRY, "/lab retry"),  # closing fence: 3 spaces, trailing blanks
    ("``` not a fence `x`\n/lab preview", PREVIEW, "/lab preview"),  # a backtick in the info string: text
    ("Looks good.\r\n/lab preview\r\n", PREVIEW, "/lab preview"),  # CRLF, as comments typed on github.com
    ("  /lab   Retry  ", RETRY, "/lab   Retry"),
    ("   /lab preview", PREVIEW, "/lab preview"),  # 3 spaces: not yet code
    ("    code\n\n/lab retry", RETRY, "/lab retry"),
    ("<!-- template text -->\n/lab preview", PREVIEW, "/lab preview"),
    ("<!--\nPlease describe your change.\n-->\n\n/lab retry\n", RETRY, "/lab retry"),
    ("<!-- one --><!-- two -->\n/lab preview", PREVIEW, "/lab preview"),
    ("<!-->\n/lab preview", PREVIEW, "/lab preview"),  # an empty comment closes itself
    ("<!--->\n/lab preview", PREVIEW, "/lab preview"),
    ("Write `<!--` to hide text.\n/lab preview", PREVIEW, "/lab preview"),  # in a code span: no comment
    ("```\n<!--\n```\n/lab retry", RETRY, "/lab retry"),  # in a fence: no comment
    ("<!--\n```\n-->\n/lab preview", PREVIEW, "/lab preview"),  # in a comment: no fence
    ("<pre>\nx\n</pre>\n/lab preview", PREVIEW, "/lab preview"),  # after a closed <pre> block
]


@pytest.mark.parametrize("body", CITED)
def test_lab_commands_in_code_blocks_quotes_and_html_comments_do_not_run(body: str) -> None:
    assert parse_command(body) is None


@pytest.mark.parametrize(("body", "kind", "line"), LIVE)
def test_lab_commands_outside_code_blocks_quotes_and_html_comments_run(body: str, kind: str, line: str) -> None:
    assert parse_command(body) == (kind, line)


def test_fenced_and_quoted_commands_queue_nothing(srv: Server) -> None:
    for i, body in enumerate(CITED):
        r = srv.post(comment_event(body, "2024-05-01T12:30:00Z"), event="issue_comment", delivery=f"q{i}")
        assert r.status_code == 200 and "no command" in r.text, body
    assert srv.queue.pending() == []
    srv.post(comment_event(LIVE[0][0], "2024-05-01T12:30:00Z"), event="issue_comment", delivery="live")
    assert [j.kind for j in srv.queue.pending()] == [PREVIEW]


def test_merge_into_the_default_branch_queues_a_merge_record(srv: Server) -> None:
    merged = pr_event("closed", merged=True, merge_commit_sha="c" * 40)
    assert srv.post(merged, delivery="m1").status_code == 202
    other = pr_event("closed", merged=True, merge_commit_sha="d" * 40, base={"ref": "release"})
    assert srv.post(other, delivery="m2").status_code == 200
    closed = pr_event("closed", merged=False)
    assert srv.post(closed, delivery="m3").status_code == 200
    assert [(j.kind, j.sha) for j in srv.queue.pending()] == [(MERGED, "c" * 40)]


def test_ping_and_unknown_events_are_acknowledged_without_jobs(srv: Server) -> None:
    assert srv.post({"zen": "hi"}, event="ping").json()["status"] == "pong"
    assert srv.post(pr_event(), event="star", delivery="d-2").status_code == 200
    assert srv.queue.pending() == []


def test_rerun_from_the_checks_ui_validates_that_head_again(srv: Server) -> None:
    event = {"action": "rerequested", "repository": {"full_name": "acme/taxonomy"},
             "check_run": {"head_sha": HEAD, "name": "Labrador", "pull_requests": [{"number": 7}]}}
    assert srv.post(event, event="check_run").status_code == 202
    assert [(j.kind, j.pr, j.sha) for j in srv.queue.pending()] == [(VALIDATE, 7, HEAD)]
