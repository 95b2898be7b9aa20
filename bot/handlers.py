"""Job logic: validate a push, answer ``/lab`` commands, record merges. Given a job and a :class:`JobContext`.

Rules that matter: checks read blobs from git (never a checkout); a command runs only on the head SHA it was
written against; a check run, once opened, is always completed (here, or by the runner on error/deadline).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import pygit2

from labrador.trainer import markdown as md
from labrador.trainer.preview import seeds_of
from labrador.validators import Report, commits
from labrador.validators.changes import ChangeError, Changes
from labrador.validators.documents import DocumentError, resolve_documents

from . import checking, gitcache, render
from .context import DeadlineExceeded, JobContext
from .forge import WRITE_PERMISSIONS, CheckOutput, HeadMissing, PullRequest
from .heads import Binding, Sighting, bind, newest
from .jobs import HELP, MERGED, PREVIEW, RETRY, VALIDATE, Job
from .merges import leaves_of, record_merge
from .preview import PreviewResult

log = logging.getLogger("labrador.bot.handlers")


@dataclass
class Inspection:
    """The changed leaves of one head, checked: what both validation and previews start from."""

    gitdir: Path
    changes: Changes
    results: list[tuple[Report, bytes | None]]
    skipped: int


def handle(job: Job, ctx: JobContext) -> None:
    """Entry point for a worker: dispatch by kind."""
    {VALIDATE: validate, RETRY: retry, PREVIEW: preview, HELP: show_help, MERGED: merged}[job.kind](job, ctx)


def may_command(ctx: JobContext, user: str, pr: PullRequest | None = None, author_ok: bool = False) -> bool:
    """Write access, or membership of the maintainers team (or, for cheap commands, being the PR's author)."""
    if author_ok and pr is not None and user == pr.author:
        return True
    if ctx.forge.permission(ctx.job.repo, user) in WRITE_PERMISSIONS:
        return True
    team = ctx.settings.team(ctx.job.repo)
    return bool(team) and ctx.forge.is_team_member(team[0], team[1], user)


def inspect(ctx: JobContext, pr: PullRequest, sha: str) -> Inspection:
    """Fetch the head into the bare cache, diff merge-base..head, check the changed leaves from blobs."""
    settings = ctx.settings
    gitdir = ctx.forge.fetch(pr, settings.work_path / "git")
    repo = pygit2.Repository(str(gitdir))
    base = gitcache.base_commit(repo, pr.base_sha, pr.base_ref)
    changes = commits.changed_leaves(repo, base, sha, settings.taxonomy_dir)
    prefix = settings.taxonomy_dir.strip("/")
    results, skipped = checking.check_changed(repo, sha, prefix, changes.changed, settings.checker, True, gitdir,
                                              max_leaves=settings.max_leaves)
    return Inspection(gitdir, changes, results, skipped)


def observe_head(ctx: JobContext, pr: PullRequest) -> list[Sighting]:
    """Record the head GitHub reports now, and return the PR's head log with it; a new head of a PR the bot
    knows (a lost ``synchronize``) also gets the validation its push should have started."""
    job = ctx.job
    seen = ctx.state.heads(job.repo, job.pr)
    if newest(seen) == pr.head_sha:
        return seen
    # GitHub's clock, like the comments' times: the head was this when the PR was last updated (a push
    # updates it), if not earlier
    sighting = Sighting(pr.head_sha, pr.updated_at or time.time(), exact=False)
    ctx.state.record_head(job.repo, job.pr, sighting.sha, sighting.seen, exact=False)
    if pr.state == "open" and ctx.submit is not None and seen and all(s.sha != pr.head_sha for s in seen):
        log.info("%s#%d: head %s was never announced; validating it", job.repo, job.pr, pr.head_sha[:12])
        ctx.submit(Job(VALIDATE, job.repo, job.pr, pr.head_sha, job.installation, delivery=job.delivery))
    return [*seen, sighting]


def _current(ctx: JobContext, job: Job, need_open: bool = True) -> PullRequest | None:
    """The PR now, or None (after telling the requester) when the command cannot run on the head its
    comment was written against: bound again here, from every head sighting the bot has by now."""
    pr = ctx.forge.pull_request(job.repo, job.pr)
    heads = observe_head(ctx, pr)
    if need_open and pr.state != "open":
        ctx.update_sticky(notice=render.notice(job.requester, job.command, "the pull request is closed."))
        return None
    if job.said_at < 0:
        ctx.update_sticky(notice=render.unreadable_time(job.requester, job.command, pr.head_sha))
        return None
    bound = bind(heads, job.said_at) if job.said_at else Binding(sha=job.sha)
    if bound.ambiguous:
        ctx.update_sticky(notice=render.ambiguous_head(job.requester, job.command, bound.candidates, pr.head_sha))
        return None
    if not bound.sha:
        ctx.update_sticky(notice=render.unknown_head(job.requester, job.command, pr.head_sha))
        return None
    if pr.head_sha != bound.sha:
        ctx.update_sticky(notice=render.head_moved(job.requester, job.command, bound.sha, pr.head_sha))
        return None
    return pr


def validate(job: Job, ctx: JobContext, pr: PullRequest | None = None) -> None:
    """A push (or /lab retry): check run on the head, findings as annotations, sticky comment, labels."""
    if pr is None and not job.pr:  # "Re-run" on a fork's check: GitHub did not say which PR
        numbers = ctx.forge.open_pull_requests_for(job.repo, job.sha)
        if not numbers:
            log.info("skip %s: no open pull request has head %s", job.key, job.sha[:12])
            return
        for number in numbers[1:]:
            if ctx.submit is not None:
                ctx.submit(replace(job, pr=number, id=uuid.uuid4().hex))
        job = replace(job, pr=numbers[0])
        ctx.job = job
    pr = pr or ctx.forge.pull_request(job.repo, job.pr)
    sha = pr.head_sha if job.kind == RETRY else job.sha
    if pr.state != "open" or pr.head_sha != sha:
        log.info("skip %s: the PR is closed or has a newer head", job.key)  # the newer push has its own job
        return
    settings = ctx.settings
    check_id = ctx.open_check(settings.check_name, sha,
                              CheckOutput("Validating", "Checking the leaves this pull request changes."))
    try:
        found = inspect(ctx, pr, sha)
    except HeadMissing:
        ctx.finish_check(check_id, "cancelled", CheckOutput("Superseded", "The pull request head moved on while "
                                                            "this check ran; the newer commit has its own check."))
        return
    except ChangeError as exc:
        ctx.finish_check(check_id, "failure", CheckOutput("Cannot compare", md.text(str(exc))))
        return
    reports = [r for r, _ in found.results]
    prefix = settings.taxonomy_dir.strip("/")
    notes = tuple(checking.annotations(reports, prefix))
    output = render.check_output(reports, found.changes, sha, prefix, notes, found.skipped)
    # never green while a leaf went unchecked: a broken one could hide among them
    ok = not any(r.errors for r in reports) and not found.skipped
    ctx.finish_check(check_id, "success" if ok else "failure", output)
    section = render.validation_section(reports, found.changes, sha, prefix, found.skipped)
    ctx.update_sticky(validation=section, notice="")
    labels = checking.labels_for(found.changes.changed + found.changes.deleted)
    if labels:
        ctx.forge.add_labels(job.repo, job.pr, labels)


def retry(job: Job, ctx: JobContext) -> None:
    pr = ctx.forge.pull_request(job.repo, job.pr)
    if not may_command(ctx, job.requester, pr, author_ok=True):
        ctx.update_sticky(notice=render.refused(job.requester, job.command))
        return
    if (pr := _current(ctx, job)) is not None:
        validate(job, ctx, pr)


def show_help(job: Job, ctx: JobContext) -> None:
    ctx.update_sticky(notice=render.help_text(job.requester, job.command))


def preview(job: Job, ctx: JobContext) -> None:
    """/lab preview: samples for the valid changed leaves of the bound head, beside their seeds."""
    if not may_command(ctx, job.requester):
        ctx.update_sticky(notice=render.refused(job.requester, job.command))
        return
    pr = _current(ctx, job)
    if pr is None:
        return
    if not _preview_allowed(ctx, job):
        ctx.update_sticky(notice=render.notice(job.requester, job.command, f"this pull request already had "
                                               f"{ctx.settings.preview_limit} previews in the last "
                                               f"{ctx.settings.preview_window_s / 60:.0f} minutes; try again "
                                               "later."))
        return
    if ctx.previewer is None:
        ctx.update_sticky(notice=render.notice(job.requester, job.command, "previews are not configured on this "
                                               "bot (no teacher); ask a maintainer."))
        return
    settings = ctx.settings
    job = replace(job, sha=pr.head_sha)  # the head the command was bound to, now checked against GitHub's
    check_id = ctx.open_check(settings.preview_check_name, job.sha,
                              CheckOutput("Generating a preview", "Asking the teacher for a few samples."))
    try:
        found = inspect(ctx, pr, job.sha)
    except HeadMissing:
        ctx.finish_check(check_id, "cancelled", CheckOutput("Superseded", "The pull request head moved on."))
        now = ctx.forge.pull_request(job.repo, job.pr).head_sha
        ctx.update_sticky(notice=render.head_moved(job.requester, job.command, job.sha, now))
        return
    leaves = _previews(ctx, found)
    section = render.preview_section(leaves, job.sha, job.requester, max(0, len(found.results) - len(leaves)))
    ran = [leaf for leaf in leaves if leaf.result is not None and not leaf.result.error]
    failed = any(leaf.result is not None and leaf.result.error for leaf in leaves)
    conclusion = "failure" if failed else "success" if ran else "neutral"
    title = f"{sum(leaf.result.kept for leaf in ran)} sample(s) kept from {len(ran)} leaf(s)"
    ctx.finish_check(check_id, conclusion, CheckOutput(title, section))
    ctx.update_sticky(preview=section, notice="")


def _preview_allowed(ctx: JobContext, job: Job) -> bool:
    """Take one of the PR's ``preview_limit`` slots for the window (atomic claims, shared by every worker)."""
    limit = ctx.settings.preview_limit
    if limit <= 0:
        return True
    window = ctx.settings.preview_window_s
    return any(ctx.state.claim("preview", f"{job.repo}#{job.pr}:{slot}", window) for slot in range(limit))


def _previews(ctx: JobContext, found: Inspection) -> list[render.LeafPreview]:
    settings = ctx.settings
    leaves: list[render.LeafPreview] = []
    calls = []
    for report, data in [r for r in found.results if r[0].path != "."][: settings.preview_max_leaves]:
        leaf = render.LeafPreview(report.path, seeds_of(report.data))
        leaves.append(leaf)
        if not report.ok or data is None:
            leaf.skipped = "the leaf has validation errors; fix them first"
            continue
        docs: list[tuple[str, bytes]] = []
        if report.branch == "knowledge":
            try:
                docs = resolve_documents(report.data.get("document"), settings.checker, found.gitdir)
            except DocumentError as exc:
                leaf.skipped = f"its documents could not be read: {exc}"
                continue
        calls.append((leaf, report.path, data, docs, report))
    if calls:
        results = asyncio.run(_gather(ctx, calls))
        for (leaf, *_), result in zip(calls, results, strict=True):
            leaf.result = result
    return leaves


async def _gather(ctx: JobContext, calls: list) -> list[PreviewResult]:
    async def one(path: str, data: bytes, docs: list, report: Report) -> PreviewResult:
        try:  # the leaf was checked by inspect(): its report goes along, so it is not checked again
            return await ctx.previewer.preview(path, data, docs, report=report)  # type: ignore[union-attr]
        except Exception as exc:  # the teacher's failure is this leaf's result, not the job's
            return PreviewResult(error=f"{type(exc).__name__}: {str(exc)[:300]}")

    tasks = [one(path, data, docs, report) for _, path, data, docs, report in calls]
    try:
        return list(await asyncio.wait_for(asyncio.gather(*tasks), timeout=max(0.01, ctx.deadline.remaining())))
    except TimeoutError:
        raise DeadlineExceeded("the preview ran past the job's deadline") from None


def merged(job: Job, ctx: JobContext) -> None:
    """Record the merge (leaves changed and deleted) for the nightly job; optionally dispatch its workflow."""
    settings = ctx.settings
    files = ctx.forge.changed_files(job.repo, job.pr)
    changed, deleted = leaves_of(files, settings.taxonomy_dir)
    record = {"repo": job.repo, "pr": job.pr, "merge_sha": job.sha, "leaves": changed, "deleted": deleted,
              "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    appended = record_merge(settings.merges_path, record)
    if appended and settings.dispatch_workflow and (changed or deleted):
        pr = ctx.forge.pull_request(job.repo, job.pr)
        ctx.forge.dispatch_workflow(job.repo, settings.dispatch_workflow, pr.default_branch,
                                    {"merge_sha": job.sha, "pr": str(job.pr)})
