"""`GitHubServer`: the fake on a free loopback port, in a background thread, plus test helpers."""

from __future__ import annotations

import functools
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from . import events
from .app import build_app
from .framework import Backend
from .models import CheckRun, Comment
from .openapi import load_spec
from .render_core import Urls
from .state import State
from .webhooks import Payload, delivery


@functools.cache
def _app_key() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of the test app; one RSA key per process keeps startup fast."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


class GitHubServer:
    """A stateful, spec-validated GitHub API + git server for one test. Use as a context manager."""

    def __init__(
        self,
        *,
        app_id: int = 4242,
        app_slug: str = "labrador-bot",
        app_owner: str = "labrador-org",
        webhook_secret: str = "labrador-webhook-secret",
        token_ttl: float = 3600.0,
        enterprise_urls: bool = False,
    ) -> None:
        self.app_id, self.app_slug, self.webhook_secret = app_id, app_slug, webhook_secret
        self.private_key_pem, self.public_key_pem = _app_key()
        self._root = Path(tempfile.mkdtemp(prefix="ghserver-"))
        self.state = State(self._root / "git", app_slug, token_ttl)
        self.backend = Backend(self.state, load_spec(), app_id, app_slug, self.public_key_pem, app_owner)
        self._enterprise = enterprise_urls
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> GitHubServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self.backend), log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("ghserver did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> GitHubServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses and credentials -------------------------------------------------------------
    @property
    def url(self) -> str:
        """Web/git root, and what `github3.GitHubEnterprise(url)` takes (it appends `/api/v3`)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """REST root for `session.base_url` (also served under `/api/v3`)."""
        return self.url + ("/api/v3" if self._enterprise else "")

    def git_url(self, full_name: str) -> str:
        return f"{self.url}/{full_name}.git"

    def installation_id(self, owner: str) -> int:
        return self.state.installation(owner).id

    def installation_token(self, owner: str, ttl: float | None = None) -> str:
        """Mint a token without HTTP (for test-side git fetches or raw requests)."""
        return self.state.mint_token(self.installation_id(owner), ttl).token

    def github3_client(self, owner: str, enterprise: bool = False) -> Any:
        """A real github3.py client logged in as the app's installation on `owner` (via HTTP)."""
        import github3

        gh = github3.GitHubEnterprise(self.url) if enterprise else github3.GitHub()
        if not enterprise:
            gh.session.base_url = self.url
        gh.login_as_app_installation(self.private_key_pem, str(self.app_id), self.installation_id(owner))
        return gh

    # -- failures the test must see ----------------------------------------------------------------
    @property
    def errors(self) -> list[BaseException]:
        return self.state.errors

    def raise_errors(self) -> None:
        """Raise the first recorded spec violation / crash / unimplemented endpoint, if any."""
        if self.state.errors:
            first, *rest = self.state.errors
            raise AssertionError(f"ghserver recorded {len(rest) + 1} error(s); first: {first}") from first

    # -- webhooks --------------------------------------------------------------------------------
    def _urls(self) -> Urls:
        return Urls(self.api_url, self.url)

    def pull_request_event(self, full_name: str, number: int, action: str = "opened", **kw: Any) -> Payload:
        """Spec-validated `pull_request` payload for current state (kw: sender, before)."""
        return events.pull_request_event(self.backend, self._urls(), full_name, number, action, **kw)

    def issue_comment_event(self, comment: Comment, action: str = "created", **kw: Any) -> Payload:
        return events.issue_comment_event(self.backend, self._urls(), comment, action, **kw)

    def check_run_event(self, run: CheckRun, action: str = "rerequested", **kw: Any) -> Payload:
        return events.check_run_event(self.backend, self._urls(), run, action, **kw)

    def delivery(self, event: str, payload: Payload, **kw: Any) -> tuple[dict[str, str], bytes]:
        """Signed (headers, body) for the bot's webhook handler, using this app's secret."""
        return delivery(event, payload, self.webhook_secret, hook_id=self.app_id, **kw)

    def deliver(self, url: str, event: str, payload: Payload, timeout: float = 30.0) -> tuple[int, bytes]:
        """POST a signed delivery to a running bot (loopback only); returns (status, body)."""
        headers, body = self.delivery(event, payload)
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
