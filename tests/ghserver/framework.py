"""Request pipeline shared by every endpoint: faults, auth, spec checks both ways, GitHub-ish errors.

Handlers are registered with :func:`api` under the *OpenAPI path template* they implement, so the
same string routes the request and selects the schema its response is validated against.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import Response

from .models import Installation, LoggedRequest, Repo, Token, User
from .openapi import Spec, SpecViolation
from .render_core import Urls, app_json
from .state import State

DOCS = "https://docs.github.com/rest"
API_PREFIX = "/api/v3"


class ApiError(Exception):
    """Raise from a handler to answer like GitHub does for client errors."""

    def __init__(self, status: int, message: str, errors: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "documentation_url": DOCS, "status": str(self.status)}
        if self.errors is not None:
            out["errors"] = self.errors
        return out


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Backend:
    """What handlers need besides the request: the world, the spec and the app's identity."""

    state: State
    spec: Spec
    app_id: int
    app_slug: str
    public_key_pem: bytes
    app_owner: str
    created_at: float = field(default_factory=time.time)


@dataclass
class Ctx:
    request: Request
    backend: Backend
    params: dict[str, str]
    body: Any
    urls: Urls
    token: Token | None = None
    installation: Installation | None = None

    @property
    def state(self) -> State:
        return self.backend.state

    @property
    def media(self) -> str:
        return self.request.headers.get("accept", "")

    def query(self, name: str, default: str | None = None) -> str | None:
        return self.request.query_params.get(name, default)

    def repo(self) -> Repo:
        """The `{owner}/{repo}` of the path, 404 unless it exists and the installation covers it."""
        full = f"{self.params['owner']}/{self.params['repo']}"
        repo = self.state.repos.get(full)
        if repo is None or repo.git is None:
            raise ApiError(404, "Not Found")
        if self.installation is not None and self.installation.account != repo.owner:
            raise ApiError(404, "Not Found")
        return repo

    def actor(self) -> User:
        """Who the request acts as: the app's bot account for installation tokens."""
        return self.state.user(self.state.bot_login, "Bot")

    def app(self) -> dict[str, Any]:
        b = self.backend
        return app_json(b.app_id, b.app_slug, self.state.user(b.app_owner), self.urls, b.created_at)


Handler = Callable[[Ctx], Reply]


@dataclass(frozen=True)
class Registered:
    method: str
    template: str  # the api.github.com path template (spec key)
    handler: Handler
    auth: str  # "installation" (token) or "app" (JWT)
    route: str  # Starlette path; differs only for params that span slashes (`{path:path}`)


ROUTES: list[Registered] = []


def api(
    method: str, template: str, auth: str = "installation", route: str | None = None
) -> Callable[[Handler], Handler]:
    """Register a handler for an api.github.com operation; `auth` is "installation" or "app" (JWT)."""

    def deco(fn: Handler) -> Handler:
        ROUTES.append(Registered(method.upper(), template, fn, auth, route or template))
        return fn

    return deco


def paginate(ctx: Ctx, items: list[Any], default: int = 30) -> tuple[list[Any], dict[str, str]]:
    """GitHub-style `per_page`/`page` slicing with an RFC 8288 `Link` header."""
    try:
        per_page = min(max(int(ctx.query("per_page") or default), 1), 100)
        page = max(int(ctx.query("page") or 1), 1)
    except ValueError:
        per_page, page = default, 1
    last = max((len(items) + per_page - 1) // per_page, 1)
    url = ctx.request.url
    rels = {"prev": page - 1, "next": page + 1, "last": last, "first": 1}
    links = [
        f'<{url.include_query_params(per_page=per_page, page=n)}>; rel="{rel}"'
        for rel, n in rels.items()
        if (rel in ("prev", "first") and page > 1) or (rel in ("next", "last") and page < last)
    ]
    return items[(page - 1) * per_page : page * per_page], ({"Link": ", ".join(links)} if links else {})


def _urls(request: Request) -> Urls:
    web = f"{request.url.scheme}://{request.url.netloc}"
    return Urls(web + API_PREFIX if request.url.path.startswith(API_PREFIX + "/") else web, web)


def _authenticate(ctx: Ctx, kind: str) -> None:
    header = ctx.request.headers.get("authorization", "")
    scheme, _, cred = header.partition(" ")
    if scheme.lower() not in ("token", "bearer") or not cred:
        raise ApiError(401, "Requires authentication")
    if kind == "app":
        _verify_jwt(ctx.backend, cred.strip())
        return
    tok = ctx.state.tokens.get(cred.strip())
    if tok is None or tok.expires_at <= time.time():
        raise ApiError(401, "Bad credentials")
    ctx.token, ctx.installation = tok, ctx.state.installation_by_id(tok.installation_id)


_EXPIRED = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the "
    "assertion expires"
)


def _verify_jwt(backend: Backend, token: str) -> None:
    """GitHub's rules for app JWTs: RS256 by the app key, `iss` = app id, exp <= 10 min ahead."""
    try:
        claims = jwt.decode(
            token, backend.public_key_pem, algorithms=["RS256"], leeway=60, options={"require": ["exp", "iat", "iss"]}
        )
    except jwt.ExpiredSignatureError:
        raise ApiError(401, _EXPIRED) from None
    except jwt.PyJWTError:
        raise ApiError(401, "A JSON web token could not be decoded") from None
    now = time.time()
    if str(claims["iss"]) != str(backend.app_id):
        raise ApiError(401, "'Issuer' claim ('iss') must be an Integer")
    if claims["exp"] > now + 600 + 30 or claims["exp"] - claims["iat"] > 600 + 60:
        raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
    if claims["iat"] > now + 60:
        raise ApiError(401, "'Issued at' claim ('iat') must be an Integer representing the time the JWT was issued")


def _json_response(reply: Reply, request_id: str) -> Response:
    headers = {
        "X-GitHub-Request-Id": request_id,
        "X-GitHub-Media-Type": "github.v3; format=json",
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": "4999",
        "X-RateLimit-Reset": str(int(time.time()) + 3600),
        "X-RateLimit-Used": "1",
        "X-RateLimit-Resource": "core",
        **reply.headers,
    }
    if reply.body is None and reply.status in (204, 304):
        return Response(status_code=reply.status, headers=headers)
    return Response(json.dumps(reply.body), reply.status, headers, media_type="application/json; charset=utf-8")


def make_endpoint(backend: Backend, template: str, methods: dict[str, tuple[Handler, str]]) -> Callable[..., Any]:
    """The ASGI endpoint for one path template (all its methods)."""

    async def endpoint(request: Request) -> Response:
        method = request.method.upper()
        path = request.url.path.removeprefix(API_PREFIX)
        state, request_id = backend.state, uuid.uuid4().hex[:20].upper()

        def respond(reply: Reply) -> Response:
            return log_response(state, method, path, f"{method} {template}", _json_response(reply, request_id))

        fault = state.take_fault(method, path)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        raw = await request.body()
        if fault is not None and fault.status is not None:
            default = {"message": "Server Error", "documentation_url": DOCS}
            body = default if fault.body is None else fault.body
            return respond(Reply(fault.status, body, dict(fault.headers or {})))
        if method not in methods:
            return respond(Reply(404, ApiError(404, "Not Found").body()))
        handler, kind = methods[method]
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = _BAD_JSON
        ctx = Ctx(request, backend, dict(request.path_params), body, _urls(request))
        try:
            _authenticate(ctx, kind)
            if body is _BAD_JSON:
                raise ApiError(400, "Problems parsing JSON")
            problems = backend.spec.request_errors(method, template, _normalize_request(template, body))
            if problems:  # what GitHub would refuse is refused here too: a bot bug, not a server one
                raise ApiError(422, "Invalid request.\n\n" + "\n".join(problems))
            with state.lock:
                reply = handler(ctx)
        except ApiError as err:
            reply = Reply(err.status, err.body())
        except Exception as exc:  # a crash in the fake must fail the test, not look like GitHub flakiness
            state.errors.append(exc)
            return respond(Reply(500, {"message": f"ghserver crashed: {exc!r}\n{traceback.format_exc()[-1500:]}"}))
        if fault is not None and fault.mutate is not None:
            reply.body = fault.mutate(reply.body) or reply.body
        try:
            backend.spec.validate_response(method, template, reply.status, reply.body)
        except SpecViolation as exc:
            state.errors.append(exc)
            reply = Reply(500, {"message": f"ghserver: {exc}", "documentation_url": DOCS})
        return respond(reply)

    return endpoint


_BAD_JSON = object()


def _normalize_request(template: str, body: Any) -> Any:
    """GitHub still accepts a bare array for label endpoints (github3 sends one); the spec only has the object."""
    if template.endswith("/labels") and isinstance(body, list):
        return {"labels": body}
    return body


def log_response(state: State, method: str, path: str, operation: str | None, response: Response) -> Response:
    with state.lock:
        state.requests.append(LoggedRequest(method, path, response.status_code, operation))
    return response
