"""``format``: rows into training samples ``{"messages": [...], ...provenance}``.

Every sample carries where it came from (leaf, leaf hash, teacher, prompt versions, judge
scores, pipeline) so a bad sample in a trained model can be traced to its leaf and prompt.
"""

from __future__ import annotations

from typing import Any

from jinja2.exceptions import TemplateError

from ..prompting import compile_template, render_checked
from .base import Context, Row, register

DEFAULT_SYSTEM = "You are Labrador, a helpful, careful and honest assistant."


@register("format", required=("user", "assistant"), optional=("system",))
async def run(step: dict[str, Any], rows: list[Row], ctx: Context) -> list[Row]:
    system = str(step.get("system", DEFAULT_SYSTEM)).strip()
    user_t, assistant_t = compile_template(str(step["user"])), compile_template(str(step["assistant"]))
    out: list[Row] = []
    for row in rows:
        variables = {k: v for k, v in row.items() if not k.startswith("_")} | {"leaf": ctx.leaf.info}
        try:
            user, assistant = render_checked(user_t, variables), render_checked(assistant_t, variables)
        except TemplateError as exc:
            ctx.drop("render_error")
            ctx.stats.note_error(f"format: {exc}")
            continue
        if not user or not assistant:
            ctx.drop("empty")
            continue
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        meta = row.get("_meta", {})
        out.append({
            "messages": messages,
            "leaf": ctx.leaf.folder,
            "leaf_hash": ctx.leaf.hash,
            "kind": ctx.leaf.kind,
            "teacher": ctx.teacher.name,
            "pipeline": ctx.pipeline_label,
            "prompt_versions": dict(sorted(meta.get("prompts", {}).items())),
            "judge_scores": dict(sorted(meta.get("scores", {}).items())),
            "origin": {"seed": row.get("seed_index"), "document": row.get("document"),
                       "chunk": row.get("chunk_index")},
        })
    return ctx.cap(out, ctx.limits.max_samples)
