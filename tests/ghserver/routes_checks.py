"""Check runs: create/update with GitHub's validation rules, annotation accumulation, full history."""

from __future__ import annotations

import copy
import datetime as dt
import time
from typing import Any

from .framework import ApiError, Ctx, Reply, api, paginate
from .models import CheckRun, Repo
from .render import annotation_json, check_run_json

MAX_ANNOTATIONS = 50  # per request; the OpenAPI request schema (maxItems) enforces it with a 422


def _ts(value: str | None) -> float | None:
    if value is None:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _apply(run: CheckRun, body: dict[str, Any], method: str) -> None:
    """Apply a create/update body the way GitHub does, refusing contradictory states with 422."""
    for key in ("name", "details_url", "external_id"):
        if key in body:
            setattr(run, key, body[key])
    if "started_at" in body:
        run.started_at = _ts(body["started_at"])
    if "status" in body:
        run.status = body["status"]
    if "conclusion" in body:
        run.conclusion, run.status = body["conclusion"], "completed"
    if "completed_at" in body:
        if "conclusion" not in body and run.conclusion is None:
            raise ApiError(422, 'Invalid request.\n\n"conclusion" wasn\'t supplied.')
        run.completed_at = _ts(body["completed_at"])
    if run.status == "completed":
        if run.conclusion is None:
            raise ApiError(422, "Invalid request.\n\nNo conclusion supplied for a completed check run.")
        run.completed_at = run.completed_at or time.time()
    if run.status == "in_progress" and run.started_at is None:
        run.started_at = time.time()
    output = body.get("output")
    if output:
        run.title, run.summary = output["title"], output["summary"]
        run.text = output.get("text", run.text)
        run.annotations.extend(output.get("annotations") or [])
        run.images.extend(output.get("images") or [])
    if "actions" in body:
        run.actions = list(body["actions"])
    run.history.append({"method": method, "body": copy.deepcopy(body), "at": time.time()})


def _sha(repo: Repo, value: str) -> str:
    assert repo.git is not None
    sha = repo.git.resolve(value) if len(value) == 40 else None
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {value}")
    return sha


@api("POST", "/repos/{owner}/{repo}/check-runs")
def create_check_run(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    body = ctx.body
    sha = _sha(repo, body["head_sha"])
    state = ctx.state
    suite = state.suites.setdefault((repo.full_name, sha), state.next_id("check_suite"))
    run = CheckRun(state.next_id("check_run"), repo.full_name, sha, body["name"], suite, started_at=time.time())
    _apply(run, body, "POST")
    state.check_runs[run.id] = run
    return Reply(201, check_run_json(state, run, ctx.urls, ctx.app()))


def _run(ctx: Ctx) -> CheckRun:
    repo = ctx.repo()
    run = ctx.state.check_runs.get(int(ctx.params["check_run_id"]))
    if run is None or run.repo != repo.full_name:
        raise ApiError(404, "Not Found")
    return run


@api("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}")
def get_check_run(ctx: Ctx) -> Reply:
    return Reply(200, check_run_json(ctx.state, _run(ctx), ctx.urls, ctx.app()))


@api("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}")
def update_check_run(ctx: Ctx) -> Reply:
    run = _run(ctx)
    trial = copy.deepcopy(run)  # validate on a copy so a 422 leaves the run untouched, like GitHub
    _apply(trial, ctx.body or {}, "PATCH")
    run.__dict__.update(trial.__dict__)
    return Reply(200, check_run_json(ctx.state, run, ctx.urls, ctx.app()))


@api("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations")
def list_annotations(ctx: Ctx) -> Reply:
    run = _run(ctx)
    page, headers = paginate(ctx, [annotation_json(run, a, ctx.urls) for a in run.annotations])
    return Reply(200, page, headers)


@api("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs")
def check_runs_for_ref(ctx: Ctx) -> Reply:
    """`filter=latest` (the default) keeps only the newest run per name, as GitHub does."""
    repo = ctx.repo()
    assert repo.git is not None
    sha = repo.git.resolve(ctx.params["ref"])
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {ctx.params['ref']}")
    runs = sorted(ctx.state.checks_for(repo.full_name, sha), key=lambda r: -r.id)
    if name := ctx.query("check_name"):
        runs = [r for r in runs if r.name == name]
    if status := ctx.query("status"):
        runs = [r for r in runs if r.status == status]
    if ctx.query("filter", "latest") == "latest":
        seen: set[str] = set()
        runs = [r for r in runs if not (r.name in seen or seen.add(r.name))]
    page, headers = paginate(ctx, runs)
    body = {"total_count": len(runs), "check_runs": [check_run_json(ctx.state, r, ctx.urls, ctx.app()) for r in page]}
    return Reply(200, body, headers)
