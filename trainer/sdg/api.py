"""Generation as a library call: check and read leaves, generate one leaf, many leaves (resumable, cached), or a
small preview for a pull request. Every caller (CLI, nightly job, previews, bot, benchmarks) comes through here."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrador.trainer.teachers.base import Teacher
from labrador.validators import Config
from labrador.validators.documents import DocumentError
from labrador.validators.documents import resolve_documents as resolve_leaf_documents
from labrador.validators.findings import Report
from labrador.validators.tree import check_tree, repo_root

from .cache import ENGINE_VERSION, checkpoint_path, leaf_dir, leaf_key, read_complete
from .checkpoint import CheckpointStore
from .engine import LeafRun, Progress, run_pipeline
from .leaf import LeafSpec, load_leaf, resolve_documents
from .limits import Limits
from .output import read_samples, write_leaf
from .pdftext import extractor_id as pdf_extractor_id
from .pdftext import is_pdf
from .pipeline import Pipeline, load_pipeline
from .prompting import Prompt, load_prompts
from .results import Documents, LeafInput, LeafResult


@dataclass(frozen=True)
class _Job:
    spec: LeafSpec
    documents: Documents
    pipeline: Pipeline
    prompts: dict[str, Prompt]
    key: str


def override_dirs(taxonomy_repo: Path | None) -> tuple[Path | None, Path | None]:
    """``<taxonomy repo>/sdg/prompts`` and ``<taxonomy repo>/sdg/pipelines`` (either may be absent)."""
    if taxonomy_repo is None:
        return None, None
    return Path(taxonomy_repo) / "sdg" / "prompts", Path(taxonomy_repo) / "sdg" / "pipelines"


async def _prepare(relpath: str, leaf_bytes: bytes, teacher: Teacher, documents: Documents | None, seed: int,
                   limits: Limits, taxonomy_repo: Path | None, config: Config | None,
                   local_repo: Path | None, report: Any = None, holdout: Sequence[str] = ()) -> _Job:
    spec = load_leaf(relpath, leaf_bytes, config, report, holdout)
    if spec.kind != "knowledge":
        documents = ()
    elif documents is None:
        documents = await asyncio.to_thread(resolve_documents, spec, config, local_repo)
    prompt_dir, pipeline_dir = override_dirs(taxonomy_repo)
    pipeline = load_pipeline(spec.kind, pipeline_dir)
    prompts = load_prompts(pipeline.prompt_names(), prompt_dir)
    params = limits.key_params()
    if holdout:  # other seeds shown to the teacher: another leaf output (none held out: the keys as before)
        params = {**params, "holdout": sorted(holdout)}
    if any(is_pdf(p, d) for p, d in documents):  # PDF text depends on the extractor, not just the bytes
        params = {**params, "pdf_text": pdf_extractor_id()}
    key = leaf_key(relpath=spec.relpath, leaf_bytes=leaf_bytes, documents=documents,
                   prompts={n: p.source for n, p in prompts.items()}, pipeline=pipeline.source,
                   teacher=getattr(teacher, "cache_id", teacher.name), params=params, seed=seed)
    return _Job(spec, tuple(documents), pipeline, prompts, key)


def _manifest(job: _Job, ctx: LeafRun, teacher: Teacher, seed: int, limits: Limits, status: str,
              kept: int, seconds: float) -> dict[str, Any]:
    sha = lambda b: hashlib.sha256(b).hexdigest()  # noqa: E731
    return {
        "leaf": job.spec.folder, "leaf_file": job.spec.relpath, "leaf_hash": job.spec.hash, "key": job.key,
        "kind": job.spec.kind, "status": status, "complete": status == "ok", "engine": ENGINE_VERSION,
        "teacher": teacher.name, "pipeline": job.pipeline.label, "pipeline_sha256": sha(job.pipeline.source),
        "prompt_versions": {n: p.version for n, p in job.prompts.items()},
        "prompt_sha256": {n: sha(p.source) for n, p in job.prompts.items()},
        "documents": [{"path": p, "sha256": sha(d)} for p, d in sorted(job.documents)],
        "seed": seed, "limits": limits.key_params(),
        "counts": {"generated": ctx.stats.generated, "kept": kept, "dropped": ctx.stats.dropped(),
                   "sent": ctx.stats.sent(), "schema_retries": ctx.stats.schema_retries()},
        "structured": ctx.stats.structured(),
        "steps": [s.to_dict() for s in ctx.stats.steps], "seconds": round(seconds, 3),
        "errors": ctx.stats.errors,
    }


async def generate_leaf(leaf_relpath: str, leaf_bytes: bytes, teacher: Teacher, out_dir: Path | None, *,
                        documents: Documents | None = None, seed: int = 0, limits: Limits | None = None,
                        progress: Progress | None = None, taxonomy_repo: Path | None = None,
                        config: Config | None = None, local_repo: Path | None = None,
                        report: Any = None, holdout: Sequence[str] = ()) -> LeafResult:
    """Generate one leaf's samples into ``out_dir`` (``None``: in memory only, no cache or checkpoint).
    ``report``: the checker's verdict on the leaf, when the caller already checked it. ``holdout``: ids of
    seed pairs no prompt may show (held-out seeds, :mod:`labrador.validators.holdout`).

    Never raises for a bad leaf or a failing teacher: the result says ``failed``/``partial`` and why.
    Only interrupts (KeyboardInterrupt, cancellation) propagate, after the checkpoint is flushed.
    """
    started = time.perf_counter()
    limits = limits or Limits()
    store: CheckpointStore | None = None
    try:
        job = await _prepare(leaf_relpath, leaf_bytes, teacher, documents, seed, limits, taxonomy_repo,
                             config, local_repo, report, holdout)
        folder = leaf_dir(Path(out_dir), job.spec.folder, job.key) if out_dir is not None else None
        if folder is not None and (manifest := read_complete(folder)) is not None:
            counts = manifest.get("counts", {})
            return LeafResult(leaf_relpath, "cached", job.key, folder, counts.get("generated", 0),
                              manifest.get("samples", 0), counts.get("dropped", {}), 0,
                              time.perf_counter() - started, manifest.get("steps", []), "", read_samples(folder))
        if out_dir is not None:
            store = CheckpointStore(checkpoint_path(Path(out_dir), job.key))
        ctx = LeafRun(job.spec, teacher, job.prompts, job.pipeline, job.documents, seed, limits, store, progress)
        samples = await run_pipeline(ctx)
        dropped = ctx.stats.dropped()
        failures = dropped.get("teacher_error", 0) + dropped.get("render_error", 0)  # never cache these
        status = "ok" if not failures else ("partial" if samples else "failed")  # partial: retried next run
        seconds = time.perf_counter() - started
        manifest = _manifest(job, ctx, teacher, seed, limits, status, len(samples), seconds)
        if folder is not None:
            write_leaf(folder, samples, manifest)
            if status == "ok" and store is not None:
                store.remove()
        return LeafResult(leaf_relpath, status, job.key, folder, ctx.stats.generated, len(samples),
                          ctx.stats.dropped(), ctx.stats.sent(), seconds, manifest["steps"],
                          "; ".join(ctx.stats.errors[:2]) if failures else "", samples)
    except Exception as exc:  # one bad leaf never aborts the others
        return LeafResult(leaf_relpath, "failed", seconds=time.perf_counter() - started,
                          error=f"{type(exc).__name__}: {exc}")
    finally:
        if store is not None:
            store.close()


async def generate(leaves: Sequence[LeafInput | tuple[str, bytes]], teacher: Teacher, out_dir: Path | None, *,
                   max_leaves: int = 64, seed: int = 0, limits: Limits | None = None,
                   progress: Progress | None = None, on_leaf: Callable[[LeafResult], None] | None = None,
                   taxonomy_repo: Path | None = None, config: Config | None = None,
                   local_repo: Path | None = None, close_teacher: bool = False) -> list[LeafResult]:
    """Generate many leaves into ``out_dir``, ``max_leaves`` at a time, sharing the teacher (which caps requests
    in flight). The one loop behind ``labrador generate``, the nightly job and the benchmarks.

    Resumes from the cache and checkpoints in ``out_dir``; ``progress`` gets step events and ``on_leaf`` each
    finished leaf. Results come back in input order whatever order leaves finish in. ``close_teacher``: close
    it at the end, also on error or interrupt.
    """
    gate = asyncio.Semaphore(max(1, max_leaves))
    items = [x if isinstance(x, LeafInput) else LeafInput(x[0], x[1]) for x in leaves]

    async def one(item: LeafInput) -> LeafResult:
        async with gate:
            res = await generate_leaf(item.relpath, item.data, teacher, out_dir, documents=item.documents,
                                      seed=seed, limits=limits, progress=progress, taxonomy_repo=taxonomy_repo,
                                      config=config, local_repo=local_repo, report=item.report,
                                      holdout=item.holdout)
        if on_leaf is not None:
            on_leaf(res)
        return res

    try:
        return list(await asyncio.gather(*(one(item) for item in items)))
    finally:
        if close_teacher:
            await teacher.aclose()


def prepare_leaves(taxonomy: Path, config: Config, folders: Sequence[str]) -> tuple[list[LeafInput],
                                                                                     list[LeafResult]]:
    """Check and read the leaves with the project's one checker and resolve knowledge documents. Invalid ones
    (and ones whose documents cannot be read) come back as ``skipped`` results saying why."""
    local = repo_root(taxonomy)
    inputs: list[LeafInput] = []
    skipped: list[LeafResult] = []
    for report in check_tree(taxonomy, config, list(folders)):
        if report.path == ".":
            continue  # stray findings (symlinks) outside any leaf
        if not report.ok:
            skipped.append(LeafResult(report.path, "skipped", error=first_error(report)))
            continue
        data = (taxonomy / report.path).read_bytes()
        documents = None
        if report.branch == "knowledge":
            try:
                documents = resolve_leaf_documents(report.data.get("document"), config, local)
            except DocumentError as exc:
                skipped.append(LeafResult(report.path, "skipped", error=f"documents: {exc}"))
                continue
        inputs.append(LeafInput(report.path, data, documents, report))
    return inputs, skipped


def first_error(report: Report) -> str:
    """One line for a leaf the checker refused: how many errors, and the first with its place."""
    f = report.errors[0]
    where = f"{f.path or report.path}:{f.line}:{f.column}" if f.line else (f.path or report.path)
    return f"invalid ({len(report.errors)} error(s)); first: {where} {f.message}"


async def preview_leaf(leaf_relpath: str, leaf_bytes: bytes, teacher: Teacher, *, samples: int = 3,
                       documents: Documents | None = None, seed: int = 0, progress: Progress | None = None,
                       taxonomy_repo: Path | None = None, config: Config | None = None,
                       local_repo: Path | None = None, out_dir: Path | None = None, report: Any = None,
                       profile: str = "full", structured: bool = True, judges: bool | None = None) -> LeafResult:
    """A handful of samples from a few seeds with n=1, fast enough for a PR comment.

    Same prompts, judges and filters as the nightly run, so a preview shows what the leaf will really yield.
    """
    return await generate_leaf(leaf_relpath, leaf_bytes, teacher, out_dir, documents=documents, seed=seed,
                               limits=Limits.preview(samples).merged(Limits.profile(profile, structured=structured,
                                                                                          judges=judges)),
                               progress=progress,
                               taxonomy_repo=taxonomy_repo,
                               config=config, local_repo=local_repo, report=report)
