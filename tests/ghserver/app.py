"""Assemble the Starlette app: API at `/` and `/api/v3` (GitHub Enterprise layout), git smart HTTP."""

from __future__ import annotations

from collections import defaultdict

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from . import routes_app, routes_checks, routes_issues, routes_repo  # noqa: F401 - importing registers the handlers
from .framework import API_PREFIX, DOCS, ROUTES, Backend, Handler, log_response, make_endpoint
from .githttp import git_routes

_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]


def _api_routes(backend: Backend) -> list[BaseRoute]:
    by_template: dict[tuple[str, str], dict[str, tuple[Handler, str]]] = defaultdict(dict)
    for r in ROUTES:
        backend.spec.operation(r.method, r.template)  # fail at startup if GitHub has no such operation
        by_template[(r.template, r.route)][r.method] = (r.handler, r.auth)
    return [Route(path, make_endpoint(backend, t, m), methods=_METHODS) for (t, path), m in by_template.items()]


def _fallback(backend: Backend) -> Route:
    """404 like GitHub, but a *real* GitHub operation we do not implement is recorded as an error:
    the e2e test must fail rather than let the bot believe GitHub said "Not Found"."""

    async def not_found(request: Request) -> Response:
        path = request.url.path.removeprefix(API_PREFIX)
        template = backend.spec.match_path(path)
        if template is not None:
            method = request.method.lower()
            if method in backend.spec.doc["paths"][template]:
                backend.state.errors.append(
                    NotImplementedError(f"ghserver does not implement {request.method} {template} ({path})")
                )
        body = {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
        return log_response(backend.state, request.method, path, None, JSONResponse(body, 404))

    return Route("/{path:path}", not_found, methods=_METHODS)


def build_app(backend: Backend) -> Starlette:
    api = _api_routes(backend)
    fallback = _fallback(backend)
    routes: list[BaseRoute] = [Mount(API_PREFIX, routes=[*api, fallback]), *api, *git_routes(backend), fallback]
    return Starlette(routes=routes)
