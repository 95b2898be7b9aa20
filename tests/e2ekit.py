"""The bot's end-to-end helpers: the starting tree, leaves good and bad, a bot wired to the GitHub test server
and driven step by step, a worker process (fixtures: ``tests/bot/conftest.py``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from ghserver import (
    Comment,
    GitHubServer,
)

from labrador.bot.config import BotSettings, Secret
from labrador.bot.forge import STICKY_MARKER
from labrador.bot.httpserver import server_config
from labrador.bot.queue import JobQueue
from labrador.bot.worker import build_app, build_worker
from labrador.validators import Config

ROOT = Path(__file__).resolve().parents[1]
REPO = "org/taxonomy"
WORKFLOW = b"on:\n  workflow_dispatch:\n    inputs: {merge_sha: {required: true}, pr: {required: true}}\njobs: {}\n"
BASE = {
    "README.md": b"# taxonomy\n",
    ".github/workflows/nightly.yml": WORKFLOW,
    **{p.relative_to(ROOT).as_posix(): p.read_bytes() for p in sorted((ROOT / "taxonomy").rglob("*")) if p.is_file()},
}

# A valid change: an existing foundational-skill leaf, edited.
VALID_PATH = "taxonomy/foundational_skills/reasoning/logic/syllogisms/qna.yaml"
VALID = BASE[VALID_PATH].replace(b"created_by: labrador-maintainers", b"created_by: alice")
# A new compositional-skill leaf, first with two errors on known lines, then fixed.
HAIKU = "taxonomy/compositional_skills/writing/freeform/haiku"
NEW_DIR = "taxonomy/compositional_skills/writing/freeform/senryu"
NEW_PATH = f"{NEW_DIR}/qna.yaml"
FIXED = BASE[f"{HAIKU}/qna.yaml"].replace(b"Write an original haiku", b"Write an original senryu-style haiku")
LAST_SEED = b"  - question: >-\n      Compose a haiku about a mountain at dawn.\n"
assert FIXED.count(LAST_SEED) == 1
BROKEN = FIXED.replace(b"version: 3\n", b"version: 3\nunknown_key: 1\n").replace(LAST_SEED, b"  - question: ''\n")
BROKEN_LINES = {2, 41}  # the unknown key; the empty question (line 41 of BROKEN)
assert BROKEN.splitlines()[1] == b"unknown_key: 1" and BROKEN.splitlines()[40] == b"  - question: ''"
ATTRIBUTION = BASE[f"{HAIKU}/attribution.txt"]
TWO_LEAVES = {VALID_PATH: VALID, NEW_PATH: BROKEN, f"{NEW_DIR}/attribution.txt": ATTRIBUTION}


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "a condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def loopback_socket() -> socket.socket:
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only then (else each keep-alive
    # answer waits ~40 ms for a delayed ACK)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def bot_settings(server: GitHubServer, work: Path, **overrides: Any) -> BotSettings:
    values: dict[str, Any] = {
        "api_url": server.api_url, "app_id": str(server.app_id),
        "private_key": Secret(server.private_key_pem.decode()), "webhook_secret": Secret(server.webhook_secret),
        "work_dir": str(work / "work"), "queue_url": f"sqlite:///{work / 'queue.db'}",
        "bot_login": server.state.bot_login, "heartbeat_s": 0.05, "retries": 1, "retry_delay_s": 0.0,
        "job_deadline_s": 60.0, "dispatch_workflow": "nightly.yml", "checker": Config(cache_dir=str(work / "cache")),
    }
    values.update(overrides)
    return BotSettings(**values)


class Bot:
    """The webhook app under uvicorn on 127.0.0.1 (its own queue handle), and an in-process worker over the same
    SQLite queue (built on first use) that runs what is queued, as a worker process would."""

    def __init__(self, server: GitHubServer, work: Path, **overrides: Any) -> None:
        self.gh = server
        self.settings = bot_settings(server, work, **overrides)
        self.web_queue = JobQueue(self.settings)
        sock = loopback_socket()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhook"
        config = server_config(build_app(self.settings, self.web_queue), self.settings.read_timeout_s,
                               log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 10, "the webhook server")
        self.http = httpx.Client(timeout=10)
        self._worker: tuple[JobQueue, Any] | None = None
        self.previewer: Any = None

    def post(self, headers: dict[str, str], body: bytes) -> httpx.Response:
        return self.http.post(self.url, content=body, headers=headers)

    def deliver(self, event: str, payload: dict[str, Any]) -> httpx.Response:
        """A delivery signed by the test GitHub, POSTed to the webhook; it must be acknowledged."""
        response = self.post(*self.gh.delivery(event, payload))
        assert response.status_code in (200, 202), response.text
        return response

    @property
    def worker(self) -> JobQueue:
        if self._worker is None:
            self._worker = build_worker(self.settings, previewer=self.previewer)
        return self._worker[0]

    @property
    def runner(self) -> Any:
        _ = self.worker
        assert self._worker is not None
        return self._worker[1]

    def work(self) -> int:
        """Run every queued job (and retries due now); returns how many tasks ran."""
        return self.worker.run_pending()

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(10)


def open_pr(gh: GitHubServer, files: dict[str, bytes], age_s: float = 60.0, user: str = "alice") -> Any:
    """A PR opened ``age_s`` ago (so a later push or comment has a later, second-resolution timestamp)."""
    pr = gh.state.open_pr(REPO, files, user=user)
    with gh.state.lock:
        pr.created_at -= age_s
        pr.updated_at -= age_s
    return pr


def comment(gh: GitHubServer, number: int, body: str, user: str, age_s: float = 0.0) -> Comment:
    c = gh.state.add_comment(REPO, number, body, user=user)
    with gh.state.lock:
        c.created_at -= age_s
        c.updated_at -= age_s
    return c


def sticky(gh: GitHubServer, number: int) -> Comment:
    """The bot's one sticky comment (fails if there is none or more than one)."""
    mine = [c for c in gh.state.comments_on(REPO, number) if c.user == gh.state.bot_login]
    assert len(mine) == 1, [c.body[:80] for c in mine]
    assert mine[0].body.startswith(STICKY_MARKER)
    return mine[0]


def runs(gh: GitHubServer, sha: str, name: str = "Labrador") -> list[Any]:
    return sorted(gh.state.checks_for(REPO, sha, name=name), key=lambda r: r.id)


def annotated(run: Any) -> set[tuple[str, int, str]]:
    return {(a["path"], a["start_line"], a["annotation_level"]) for a in run.annotations}


# -- 1 and 2: open, then fix with a push ------------------------------------------------------------------------


def start_worker(gh: GitHubServer, bot: Bot, log: Path, extra: str = "", worker_type: str = "thread"
                 ) -> subprocess.Popen:
    """``labrador bot worker`` as a separate process: settings from a file, secrets from the environment."""
    config = log.with_suffix(".toml")
    config.write_text(f'[bot]\nbot_login = "{gh.state.bot_login}"\nheartbeat_s = 0.2\nretries = 0\n'
                      f'job_deadline_s = 60\nstale_after_s = 60\n{extra}', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABRADOR_")}
    env.update(LABRADOR_API_URL=gh.api_url, LABRADOR_APP_ID=str(gh.app_id),
               LABRADOR_APP_PRIVATE_KEY=gh.private_key_pem.decode(), LABRADOR_QUEUE_URL=bot.settings.queue_url,
               LABRADOR_WORK_DIR=bot.settings.work_dir, PYTHONPATH=str(ROOT))
    script = Path(sys.executable).with_name("labrador")
    argv = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from labrador.validators.cli import main; sys.exit(main())"]
    with open(log, "w") as out:
        return subprocess.Popen([*argv, "bot", "worker", "--workers", "1", "--worker-type", worker_type,
                                 "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
