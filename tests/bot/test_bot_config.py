"""Settings and secrets, the CLI wiring, check-run payload batching and GitHub App auth (loopback server)."""

from __future__ import annotations

import argparse
import json
import pickle
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from labrador.bot import cli
from labrador.bot.appauth import AuthError, InstallationTokens, app_jwt
from labrador.bot.config import Secret, load_settings, mask_url
from labrador.bot.forge import Annotation, CheckOutput, check_payloads
from labrador.bot.jobs import PREVIEW, Job
from labrador.validators.config import ConfigError


def test_secrets_never_print_and_never_pickle(tmp_path: Path) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text("-----BEGIN PRIVATE KEY-----\nsecret-key-material\n")
    env = {"LABRADOR_WEBHOOK_SECRET": "hook-secret", "LABRADOR_APP_PRIVATE_KEY_FILE": str(key_file),
           "LABRADOR_APP_ID": "123", "LABRADOR_QUEUE_URL": "redis://:redis-pw@127.0.0.1:6379/0"}
    settings = load_settings(None, env)
    assert settings.webhook_secret.reveal() == "hook-secret"
    assert "secret-key-material" in settings.private_key.reveal()
    shown = repr(settings) + str(settings.webhook_secret) + f"{settings.private_key}"
    for leaked in ("hook-secret", "secret-key-material", "redis-pw"):
        assert leaked not in shown
    assert settings.app_id == "123" and "redis://:***@127.0.0.1:6379/0" in shown
    with pytest.raises(TypeError):
        pickle.dumps(settings.webhook_secret)
    job = Job(PREVIEW, "acme/t", 1, "a" * 40, requester="maria")
    assert set(json.loads(json.dumps(job.to_dict()))) == {"kind", "repo", "pr", "sha", "installation", "comment_id",
                                                          "requester", "command", "delivery", "rerun", "said_at", "id",
                                                          "created"}


def test_settings_file_holds_no_secrets_and_no_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "labrador.toml"
    path.write_text('[bot]\napp_id = 7\nmaintainers_team = "acme/reviewers"\njob_deadline_s = 120\n'
                    'work_dir = "state"\n[documents]\nallowed_hosts = ["example.org"]\n')
    settings = load_settings(path, {})
    assert settings.app_id == "7" and settings.job_deadline_s == 120.0
    assert settings.team("acme/taxonomy") == ("acme", "reviewers")
    assert settings.work_path == (tmp_path / "state").resolve()
    assert settings.checker.allowed_hosts == ("example.org",)  # the bot's documents allowlist, not the PR's
    path.write_text('[bot]\nwebhook_secret = "oops"\n')
    with pytest.raises(ConfigError, match="environment"):
        load_settings(path, {})
    path.write_text("[bot]\nnope = 1\n")
    with pytest.raises(ConfigError, match="nope: unknown key"):
        load_settings(path, {})
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_worker_without_app_credentials_fails_fast(tmp_path: Path) -> None:
    from labrador.bot.config import BotSettings
    from labrador.bot.worker import build_worker

    with pytest.raises(ValueError, match="LABRADOR_APP_ID"):
        build_worker(BotSettings(work_dir=str(tmp_path)))


def test_cli_registers_bot_serve_and_worker() -> None:
    parser = argparse.ArgumentParser(prog="labrador")
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["bot", "serve", "--port", "9000"])
    assert (args.bot_command, args.host, args.port) == ("serve", "127.0.0.1", 9000)
    args = parser.parse_args(["bot", "worker", "--workers", "3"])
    assert (args.bot_command, args.workers, args.worker_type) == ("worker", 3, "thread")
    with pytest.raises(SystemExit):
        parser.parse_args(["bot", "serve", "--webhook-secret", "x"])  # no way to put a secret in argv


def test_worker_poll_interval_from_settings_and_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from labrador.bot import worker
    from labrador.bot.config import BotSettings
    from labrador.bot.queue import JobQueue

    assert BotSettings().worker_poll_s == 0.5  # an idle worker polls twice a second, not every 2 s
    path = tmp_path / "labrador.toml"
    path.write_text(f'[bot]\nworker_poll_s = 0.25\nwork_dir = "{tmp_path / "state"}"\n')
    assert load_settings(path, {}).worker_poll_s == 0.25
    path.write_text("[bot]\nworker_poll_s = -1\n")
    with pytest.raises(ConfigError, match=r"\[bot\] worker_poll_s: must be 0 or more, got -1"):
        load_settings(path, {})
    path.write_text(f'[bot]\nworker_poll_s = 0.25\nwork_dir = "{tmp_path / "state"}"\n')

    ran: list[tuple[float, float | None, int]] = []
    monkeypatch.setattr(worker, "run_worker", lambda settings, workers, worker_type, poll_s=None:
                        ran.append((settings.worker_poll_s, poll_s, workers)))
    parser = argparse.ArgumentParser(prog="labrador")
    cli.register(parser.add_subparsers())
    for argv in (["bot", "worker", "--config", str(path)],
                 ["bot", "worker", "--config", str(path), "--poll-interval", "1.5", "--workers", "1"]):
        args = parser.parse_args(argv)
        assert args.func(args) == 0
    assert ran == [(0.25, 0.25, 2), (1.5, 1.5, 1)]  # the file's value, then the flag's over it
    with pytest.raises(SystemExit):
        parser.parse_args(["bot", "worker", "--poll-interval", "soon"])

    # the value reaches huey's consumer: back off from 0.1 s to at most poll_s between polls of an idle queue
    settings = load_settings(path, {})
    consumer = JobQueue(settings).consumer(workers=1, poll_s=settings.worker_poll_s)
    assert (consumer.default_delay, consumer.max_delay) == (0.1, 0.25)
    assert JobQueue(settings).consumer(poll_s=0.05).default_delay == 0.05  # never above the interval
    monkeypatch.undo()
    args = parser.parse_args(["bot", "worker", "--config", str(path), "--poll-interval", "0"])
    assert args.func(args) == 2 and "must be more than 0" in capsys.readouterr().err


def test_check_payloads_batch_annotations_by_fifty() -> None:
    notes = tuple(Annotation("taxonomy/a/qna.yaml", i, i, "failure", f"m{i}", "schema", start_column=2)
                  for i in range(1, 121))
    payloads = check_payloads(CheckOutput("t", "s", annotations=notes), conclusion="failure")
    assert [len(p["output"].get("annotations", [])) for p in payloads] == [50, 50, 20]
    assert [p.get("status") for p in payloads] == [None, None, "completed"]
    assert payloads[-1]["conclusion"] == "failure" and "completed_at" in payloads[-1]
    assert payloads[0]["output"]["annotations"][0]["start_column"] == 2
    [single] = check_payloads(CheckOutput("t", "s"))
    assert single["status"] == "in_progress" and "conclusion" not in single
    with pytest.raises(ValueError):
        check_payloads(CheckOutput("t", "s"), conclusion="stale")


@pytest.fixture(scope="module")
def rsa_pem() -> tuple[str, object]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, key.public_key()


def test_app_jwt_is_rs256_and_short_lived(rsa_pem) -> None:
    pem, public = rsa_pem
    token = app_jwt("42", Secret(pem), now=1_700_000_000)
    claims = jwt.decode(token, public, algorithms=["RS256"], options={"verify_exp": False})
    assert claims == {"iss": "42", "iat": 1_699_999_940, "exp": 1_700_000_540}
    with pytest.raises(AuthError, match="cannot sign"):
        app_jwt("42", Secret("not a key"))


@pytest.fixture
def token_server(rsa_pem) -> Iterator[tuple[str, list[str]]]:
    """A loopback endpoint that checks the app JWT and hands out installation tokens."""
    _, public = rsa_pem
    issued: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
            jwt.decode(bearer, public, algorithms=["RS256"])
            assert self.path == "/app/installations/99/access_tokens"
            issued.append(f"ghs_{len(issued)}")
            expires = "2030-01-01T00:00:00Z" if len(issued) > 1 else "2001-01-01T00:00:00Z"
            body = json.dumps({"token": issued[-1], "expires_at": expires}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", issued
    server.shutdown()


def test_installation_tokens_are_refreshed_before_expiry(rsa_pem, token_server) -> None:
    url, issued = token_server
    tokens = InstallationTokens(url, "42", Secret(rsa_pem[0]))
    first = tokens.token(99)  # already expired when issued: the next call must refresh
    assert "ghs_0" not in repr(first)
    second = tokens.token(99)
    assert second.value.reveal() == "ghs_1" and tokens.token(99) is second
    assert issued == ["ghs_0", "ghs_1"]


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_corrupt_bot_db_is_one_line_naming_the_file(tmp_path: Path, command: str) -> None:
    import os
    import subprocess
    import sys

    work = tmp_path / "state"
    work.mkdir()
    (work / "bot.db").write_bytes(b"this is not a SQLite database" * 100)
    path = tmp_path / "labrador.toml"
    path.write_text(f'[bot]\nwork_dir = "{work}"\n')
    env = {**os.environ, "LABRADOR_WEBHOOK_SECRET": "s", "LABRADOR_APP_PRIVATE_KEY": "k"}
    labrador = str(Path(sys.executable).with_name("labrador"))
    args = [labrador, "bot", command, "--config", str(path)] + (["--port", "0"] if command == "serve" else [])
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(work / "bot.db") in proc.stderr and "move it aside" in proc.stderr


def test_the_documented_settings_block_is_the_defaults(tmp_path: Path) -> None:
    """The `[bot]` block the docs show (docs/bot.md) loads, and every value it shows is the real default."""
    import re

    from labrador.bot.config import BotSettings

    readme = (Path(__file__).resolve().parents[2] / "docs" / "bot.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(\[bot\].*?)```", readme, re.S)
    assert block is not None
    path = tmp_path / "labrador.toml"
    path.write_text(block.group(1), encoding="utf-8")
    documented = load_settings(path, env={})
    defaults = BotSettings()
    shown = [k for k in re.findall(r"^(\w+) = ", block.group(1), re.M) if k != "work_dir"]  # (made absolute)
    assert len(shown) > 20 and documented.work_path == tmp_path / defaults.work_dir
    assert {k: getattr(documented, k) for k in shown} == {k: getattr(defaults, k) for k in shown}
