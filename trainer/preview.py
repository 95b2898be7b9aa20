"""Synthetic-data previews: what ``labrador check`` prints and what the PR bot posts, from one renderer.

``render_preview_markdown`` is pure: leaf path, seeds and a generation result in, Markdown out. All of
those are hostile (contributor and teacher text), so every string goes through :mod:`labrador.trainer.markdown`,
which escapes it for its sink (inline text, raw HTML, fenced blocks) and never emits ``<!--`` (the bot's
hidden markers). The bot wraps the same blocks (:func:`preview_blocks`) in its own heading.
``check_hook`` is the ``labrador.check_hooks`` entry point.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labrador.validators import check_file
from labrador.validators.seeds import seed_examples

from . import markdown as md

NO_PREVIEW_ENV = "LABRADOR_NO_PREVIEW"
NO_TEACHER = ("preview: not run; `labrador check --preview` shows generated samples, with the embedded teacher "
              "or the one set as `spec` under [teacher] in labrador.toml (or LABRADOR_TEACHER)")
NEEDS_TRAIN = ("preview skipped: the embedded teacher runs on torch and transformers; install them with "
               "pip install 'labrador-lab[train]' (torch first: pip install torch), or configure an HTTP teacher")


# -- rendering (pure) ----------------------------------------------------------------------------------


def sample_fields(sample: Mapping[str, Any]) -> dict[str, str]:
    """question/answer(/context) from a training row (``messages``) or an already flat sample."""
    if "messages" not in sample:
        return {k: str(sample[k]) for k in ("context", "question", "answer") if sample.get(k)}
    messages = [m for m in sample.get("messages") or [] if isinstance(m, Mapping)]
    user = next((str(m.get("content", "")) for m in messages if m.get("role") == "user"), "")
    answer = next((str(m.get("content", "")) for m in messages if m.get("role") == "assistant"), "")
    return {"question": user, "answer": answer}


def seeds_of(data: Any) -> list[dict[str, str]]:
    """A parsed leaf's seed examples, flat (the one reader, :mod:`validators.seeds`); a knowledge seed shows its
    context and first Q&A."""
    out: list[dict[str, str]] = []
    for seed in seed_examples(data):
        qa = seed.pairs[0] if seed.pairs else None
        item = {"context": seed.context, "question": qa.question if qa else "", "answer": qa.answer if qa else ""}
        out.append({k: v for k, v in item.items() if v})
    return out


def _qa(item: Mapping[str, Any], limit: int) -> str:
    parts = [f"**{name.capitalize()}**\n\n{md.code_block(item[name], limit, lang='text')}"
             for name in ("context", "question", "answer") if item.get(name)]
    return "\n\n".join(parts)


def _outcome(result: Any) -> tuple[list[dict[str, str]], str, dict[str, int], int, int, float]:
    """(samples, error, dropped by reason, kept, generated, seconds) of a generation result, read one way for
    both renderers."""
    samples = [sample_fields(s) for s in getattr(result, "samples", None) or [] if isinstance(s, Mapping)]
    dropped = {str(k): int(v) for k, v in sorted((getattr(result, "dropped", None) or {}).items()) if v}
    kept = int(getattr(result, "kept", len(samples)))
    generated = max(int(getattr(result, "generated", 0) or 0), kept)  # candidates, kept, and why the rest went
    return (samples, str(getattr(result, "error", "") or ""), dropped, kept, generated,
            float(getattr(result, "seconds", 0.0)))


def preview_blocks(leaf_path: str, seeds: Sequence[Mapping[str, Any]], result: Any, skipped: str = "") -> list[str]:
    """:func:`render_preview_markdown` as whole blocks (heading, stats and seeds first; then one per sample),
    so a caller with a size limit (the bot's comment) can drop whole blocks and never cut one in half."""
    head = f"#### {md.text(leaf_path, 300)}"
    if skipped:
        return [f"{head}\n\n_Not previewed: {md.text(skipped, 300)}_"]
    if result is None:
        return [f"{head}\n\n_Not previewed._"]
    samples, error, dropped, kept, generated, seconds = _outcome(result)
    if error and not samples:
        return [f"{head}\n\n_The preview failed: {md.text(error, 500)}_"]
    drops = ", ".join(f"{md.text(k, 40)} {v}" for k, v in dropped.items()) or "none"
    stats = f"generated **{generated}** · kept **{kept}** · dropped: {drops} · {seconds:.1f} s"
    seeds_block = md.details(f"Seeds ({len(seeds)})", "\n\n".join(_qa(s, 800) for s in seeds[:10]))
    blocks = [f"{head}\n\n{stats}\n\n{seeds_block}"]
    for i, sample in enumerate(samples, 1):
        blocks.append(md.details(f"Sample {i}: {md.html(sample.get('question', ''), 90)}", _qa(sample, 1_500)))
    if not samples:
        blocks.append("_No sample passed the filters._")
    if error:
        blocks.append(f"_Some requests failed: {md.text(error, 500)}_")
    return blocks


def _qa_text(item: Mapping[str, Any], limit: int) -> list[str]:
    lines = []
    for name in ("context", "question", "answer"):
        if item.get(name):
            body = md.plain(item[name], limit).splitlines() or [""]
            lines += [f"    {name}: {body[0]}", *(f"      {x}" for x in body[1:])]
    return lines


def render_preview_text(leaf_path: str, seeds: Sequence[Mapping[str, Any]], result: Any, skipped: str = "") -> str:
    """The same preview as plain text, for a terminal or a log (``labrador check --preview``'s human format):
    nothing to render, nothing escaped but control characters."""
    lines = [md.plain(leaf_path, 300)]
    if skipped or result is None:
        return "\n".join([*lines, f"  not previewed{': ' + md.plain(skipped, 300) if skipped else ''}"])
    samples, error, dropped, kept, generated, seconds = _outcome(result)
    if error and not samples:
        return "\n".join([*lines, f"  the preview failed: {md.plain(error, 500)}"])
    drops = ", ".join(f"{md.plain(k, 40)} {v}" for k, v in dropped.items()) or "none"
    lines.append(f"  generated {generated} · kept {kept} · dropped: {drops} · {seconds:.1f} s")
    lines.append(f"  seeds ({len(seeds)}):")
    for seed in seeds[:10]:
        lines += _qa_text(seed, 800)
        lines.append("")
    for i, sample in enumerate(samples, 1):
        lines.append(f"  sample {i}:")
        lines += _qa_text(sample, 1_500)
        lines.append("")
    if not samples:
        lines.append("  no sample passed the filters")
    if error:
        lines.append(f"  some requests failed: {md.plain(error, 500)}")
    return "\n".join(lines).rstrip()


def render_preview_markdown(leaf_path: str, seeds: Sequence[Mapping[str, Any]], result: Any,
                            skipped: str = "") -> str:
    """One leaf's preview: stats, the seeds (collapsed) and each generated sample (collapsed).

    ``result`` is a :class:`labrador.trainer.sdg.LeafResult` or anything with ``samples``, ``kept``, ``dropped``,
    ``seconds`` and ``error`` (the bot's ``PreviewResult``); ``None`` means "not run", and ``skipped``
    says why (shown to the reader, escaped).
    """
    return "\n\n".join(preview_blocks(leaf_path, seeds, result, skipped))


# -- the `labrador check` hook (edge) ------------------------------------------------------------------


def _previewable(reports: Sequence[Any]) -> list[Any]:
    # a verdict served from the cache carries no parsed data: the leaf is parsed again when previewed
    return [r for r in reports if r.ok and r.path.endswith("/qna.yaml")]


def _has_torch() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("torch", "transformers"))


def check_hook(args: argparse.Namespace, reports: Sequence[Any]) -> int:
    """Preview the changed leaves that passed validation. Never changes the verdict: always returns 0."""
    leaves = _previewable(reports)
    if not leaves or os.environ.get(NO_PREVIEW_ENV):
        return 0
    from labrador.validators.config import find_config, load_config
    from labrador.validators.tree import repo_root

    from .settings import load_settings
    from .teachers.backends import EMBEDDED, backend_of
    from .teachers.config import build_teacher, load_teacher

    taxonomy = args.taxonomy or (Path("taxonomy") if Path("taxonomy").is_dir() else Path("."))
    path = args.config if getattr(args, "config", None) else find_config(taxonomy)
    out = sys.stderr if getattr(args, "format", None) == "json" else sys.stdout  # keep JSON on stdout clean
    try:
        settings, chosen = load_settings(path), load_teacher(path)
        if not getattr(args, "preview", False):  # plain `check` stays fast: one line at most
            if not getattr(args, "quiet", False):
                print(f"preview: `labrador check --preview` shows samples from {chosen.label}" if chosen.spec
                      else NO_TEACHER, file=out)
            return 0
        chosen = chosen.merged(spec=chosen.spec or "embedded")  # profile auto: quick for the embedded teacher
        if backend_of(chosen.label) is EMBEDDED and not _has_torch():
            print(NEEDS_TRAIN, file=out)
            return 0
        from .sdg import preview_leaf  # the [sdg] extra

        teacher = build_teacher(chosen)
        config = load_config(path)
    except Exception as exc:  # a broken teacher or setting must not hide the validation verdict
        print(f"preview skipped: {type(exc).__name__}: {exc}".splitlines()[0], file=out)
        return 0
    docs = not getattr(args, "no_documents", False)
    previews = asyncio.run(_previews(preview_leaf, leaves, taxonomy, teacher, settings.preview_samples,
                                     settings.seed, config, repo_root(taxonomy) if taxonomy.exists() else None, docs,
                                     chosen.profile_name, chosen.structured_on, chosen.judges_on))
    name = getattr(teacher, "name", "teacher")
    markdown = getattr(args, "format", None) in ("github", "markdown") or (
        getattr(args, "format", None) is None and os.environ.get("GITHUB_ACTIONS") == "true")
    print("\n" + (render_markdown(previews, name) if markdown else render_text(previews, name)), file=out)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(render_markdown(previews, name) + "\n")
    return 0


Preview = tuple[str, list[dict[str, str]], Any, str]  # (leaf path, seeds, result, why skipped): a renderer's args


def render_markdown(previews: Sequence[Preview], teacher: str) -> str:
    """Every leaf's preview as GitHub Markdown (``--format github|markdown``, the step summary)."""
    title = f"### Preview: {len(previews)} leaf(s), teacher {md.text(teacher, 200)}"
    return "\n\n".join([title, *(render_preview_markdown(*p) for p in previews)])


def render_text(previews: Sequence[Preview], teacher: str) -> str:
    """Every leaf's preview as plain text (a terminal or a log)."""
    title = f"Preview: {len(previews)} leaf(s), teacher {md.plain(teacher, 200)}"
    return "\n\n".join([title, *(render_preview_text(*p) for p in previews)])


async def _previews(preview_leaf: Any, leaves: Sequence[Any], taxonomy: Path, teacher: Any, samples: int, seed: int,
                    config: Any, local: Path | None, documents: bool, profile: str = "full",
                    structured: bool = True, judges: bool | None = None) -> list[Preview]:
    async def one(report: Any) -> Preview:
        if report.branch == "knowledge" and not documents:
            return (report.path, [], None, "documents are off (--no-documents)")
        data = (taxonomy / report.path).read_bytes()
        parsed = report.data if isinstance(report.data, dict) else check_file(report.path, data, config).data
        result = await preview_leaf(report.path, data, teacher, samples=samples, seed=seed, config=config,
                                    local_repo=local, taxonomy_repo=local, report=report, profile=profile,
                                    structured=structured, judges=judges)
        return (report.path, seeds_of(parsed), result, "")

    from labrador.validators.progress import Progress

    with Progress("previewing leaves", len(leaves)) as progress:  # a bar on a terminal, a line every 30 s in a log

        async def counted(report: Any) -> Preview:
            part = await one(report)
            progress.advance(note=f"{report.path.rsplit('/', 2)[-2]} done")
            return part

        try:
            return list(await asyncio.gather(*(counted(r) for r in leaves)))
        finally:
            await teacher.aclose()
