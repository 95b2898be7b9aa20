"""GitHub App authentication: an RS256 JWT signed with the app's private key buys an installation token.

Why our own small module: tokens expire after an hour and must be refreshed *before* expiry in long-running
workers; they live in process memory only (never in jobs, logs or argv) and are wrapped in ``Secret``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests

from .config import Secret
from .routing import parse_time

REFRESH_MARGIN_S = 300.0  # refresh when less than this is left
ACCEPT = "application/vnd.github+json"


class AuthError(Exception):
    """The app could not authenticate; the message never holds a key or token."""


def app_jwt(app_id: str, private_key: Secret, now: float | None = None) -> str:
    """The app's JWT: issued a minute in the past (clock drift), valid for nine minutes (GitHub allows ten)."""
    if not app_id or not private_key:
        raise AuthError("the GitHub App id and private key are required (LABRADOR_APP_ID, LABRADOR_APP_PRIVATE_KEY)")
    now = time.time() if now is None else now
    try:
        return jwt.encode({"iat": int(now) - 60, "exp": int(now) + 540, "iss": str(app_id)},
                          private_key.reveal(), algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise AuthError(f"the app private key cannot sign a JWT ({type(exc).__name__})") from None


@dataclass(frozen=True)
class Token:
    value: Secret
    expires_at: float
    expires_str: str


class InstallationTokens:
    """Installation tokens by installation id, refreshed ahead of expiry; thread-safe."""

    def __init__(self, api_url: str, app_id: str, private_key: Secret, session: Any = None,
                 timeout_s: float = 30.0) -> None:
        self.api = api_url.rstrip("/")
        self.app_id = app_id
        self.private_key = private_key
        self.http = session or requests.Session()
        self.timeout_s = timeout_s
        self._tokens: dict[int, Token] = {}
        self._lock = threading.Lock()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {app_jwt(self.app_id, self.private_key)}", "Accept": ACCEPT}

    def installation_for(self, where: str) -> int:
        """The app's installation for ``repos/OWNER/NAME`` or ``orgs/ORG`` (already URL-quoted)."""
        resp = self.http.get(f"{self.api}/{where}/installation", headers=self._headers(), timeout=self.timeout_s)
        if resp.status_code != 200:
            raise AuthError(f"the app is not installed on {where} (HTTP {resp.status_code})")
        return int(resp.json()["id"])

    def drop(self, installation_id: int) -> None:
        """Forget a cached token GitHub no longer accepts (revoked, or the app's key rotated)."""
        with self._lock:
            self._tokens.pop(installation_id, None)

    def token(self, installation_id: int, now: float | None = None) -> Token:
        now = time.time() if now is None else now
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached is not None and cached.expires_at - now > REFRESH_MARGIN_S:
                return cached
            resp = self.http.post(f"{self.api}/app/installations/{installation_id}/access_tokens",
                                  headers=self._headers(), timeout=self.timeout_s)
            if resp.status_code != 201:
                raise AuthError(f"GitHub refused an installation token (HTTP {resp.status_code})")
            data = resp.json()
            expires = str(data.get("expires_at", ""))
            token = Token(Secret(str(data["token"])), parse_time(expires) or now + 3600, expires)
            self._tokens[installation_id] = token
            return token
