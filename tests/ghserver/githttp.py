"""Smart-HTTP git (fetch only) served by the real `git http-backend` CGI over the server's bare repos.

Using git's own server side means pygit2/libgit2 in the bot negotiates exactly as with GitHub;
auth mirrors GitHub's: HTTP basic with the installation token as password (`x-access-token:<t>`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import subprocess
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .framework import Backend, log_response

_UNAUTHORIZED = {"WWW-Authenticate": 'Basic realm="GitHub"'}


def _token_owner(backend: Backend, request: Request) -> str | None:
    """Account whose installation token was given as the basic-auth password, if valid."""
    scheme, _, cred = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        _, _, password = base64.b64decode(cred).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    tok = backend.state.tokens.get(password)
    if tok is None or tok.expires_at <= time.time():
        return None
    inst = backend.state.installation_by_id(tok.installation_id)
    return inst.account if inst else None


def _run_backend(env: dict[str, str], body: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60, check=False)


def _parse_cgi(out: bytes) -> Response:
    head, sep, payload = out.partition(b"\r\n\r\n")
    if not sep:
        head, _, payload = out.partition(b"\n\n")
    status, headers = 200, {}
    for line in head.decode("latin-1").splitlines():
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        elif key:
            headers[key.strip()] = value.strip()
    return Response(payload, status, headers)


def git_routes(backend: Backend) -> list[Route]:
    """Routes for `/{owner}/{repo}(.git)/info/refs` and `/git-upload-pack` (push is refused)."""

    async def endpoint(request: Request) -> Response:
        owner, name = request.path_params["owner"], request.path_params["repo"].removesuffix(".git")
        service = request.url.path.split("/", 3)[3]
        path, state = request.url.path, backend.state
        fault = state.take_fault(request.method, path)
        if fault is not None:
            await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return log_response(state, request.method, path, None, Response(b"fault", fault.status))
        repo = state.repos.get(f"{owner}/{name}")
        if "receive-pack" in service or "receive-pack" in request.url.query:
            return log_response(state, request.method, path, None, Response(b"Permission denied\n", 403))
        granted = _token_owner(backend, request) == owner
        anonymous = "authorization" not in request.headers
        if repo is None or repo.git is None or not (granted or (anonymous and not repo.private)):
            # GitHub answers 401 for both "bad credentials" and "no such (private) repo"; a public one can be
            # fetched without credentials
            return log_response(state, request.method, path, None, Response(b"Unauthorized\n", 401, _UNAUTHORIZED))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(state.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{owner}/{name}.git/{service}",
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.url.query,
            "CONTENT_TYPE": request.headers.get("content-type", ""),
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": request.client.host if request.client else "127.0.0.1",
            "GIT_PROTOCOL": request.headers.get("git-protocol", ""),
            "HTTP_CONTENT_ENCODING": request.headers.get("content-encoding", ""),
        }
        body = await request.body()
        env["CONTENT_LENGTH"] = str(len(body))
        proc = await asyncio.to_thread(_run_backend, env, body)
        if proc.returncode != 0 and not proc.stdout:
            return log_response(state, request.method, path, None, Response(proc.stderr, 500))
        return log_response(state, request.method, path, None, _parse_cgi(proc.stdout))

    services = ("info/refs", "git-upload-pack", "git-receive-pack")
    return [Route(f"/{{owner}}/{{repo}}/{s}", endpoint, methods=["GET", "POST"]) for s in services]
