"""The night's report: Markdown tables (leaves regenerated, samples per leaf, forgetting per earlier night,
the judged per-leaf scores, the verdict and why) and PNG plots (the training loss, forgetting across nights,
the per-leaf score deltas), fit for a workflow's job summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labrador.validators.atomic import atomic_write

from ..markdown import text as md_text
from ..sdg.stats import legend
from .plots import gain_chart, plots_of

FEW = 5  # a mean over fewer samples is marked in the report


def _num(v: Any) -> str:
    return "—" if v is None else f"{v:.4f}"


def _n(n: Any) -> str:
    """A sample count, marked when too few for its mean to say much."""
    return "—" if n is None else f"{n} (few)" if n < FEW else str(n)


def write_report(run_dir: Path, record: dict[str, Any], runs: list[dict[str, Any]]) -> Path:
    m = record.get("metrics", {})
    sizes = m.get("sizes") or {}
    lines = [f"# Labrador nightly {record['id']}: **{record['status']}**", "",
             f"{md_text(record.get('reason', ''), 500)}", "",
             *([f"**History:** {md_text(record['history'], 500)}", ""] if record.get("history") else []),
             f"- taxonomy commit: `{record['taxonomy_commit'][:12]}`; parent run: {record.get('parent') or '—'}",
             f"- teacher: {md_text(str(record.get('teacher')), 200)}; model: `{record.get('model')}`", "",
             "## Leaves", "", "| leaf | regenerated | status | kept | dropped |", "|---|---|---|---|---|"]
    for leaf, info in sorted((record.get("generation") or {}).items()):
        drops = ", ".join(f"{k} {v}" for k, v in sorted(info.get("dropped", {}).items()) if v) or "—"
        lines.append(f"| {md_text(leaf, 200)} | {'yes' if info.get('regenerated') else 'cached'} | "
                     f"{info.get('status')} | {info.get('kept')} | {md_text(drops, 300)} |")
    for leaf in record.get("leaves_removed", []):
        lines.append(f"| {md_text(leaf, 200)} | removed | — | — | — |")
    reasons = {k for info in (record.get("generation") or {}).values() for k, v in info.get("dropped", {}).items() if v}
    if legend(reasons):
        lines += ["", f"Dropped rows, by reason: {md_text(legend(reasons), 1000)}."]
    samples = record.get("samples", {}).get("night", {})
    lines += ["", f"Samples tonight: **{samples.get('new', 0)}** new, **{samples.get('replayed', 0)}** replayed "
              "from earlier nights.", "",
              "## Held-out loss", "",
              "Mean loss per reply token over n samples; \"(few)\": fewer than 5, a noisy number.", "",
              "| data | n | new model | parent model | forgetting |", "|---|---|---|---|---|",
              f"| tonight's new data | {_n(sizes.get('tonight'))} | {_num(m.get('heldout_loss', {}).get('tonight'))} | "
              f"{_num(m.get('heldout_loss', {}).get('tonight_parent'))} | |",
              f"| seed examples of the changed leaves | {_n(sizes.get('seeds'))} | "
              f"{_num(m.get('seed_loss', {}).get('new'))} | {_num(m.get('seed_loss', {}).get('parent'))} | |"]
    for night, f in sorted(m.get("forgetting", {}).items()):
        lines.append(f"| {night} held-out | {_n(sizes.get(night))} | {_num(m['heldout_loss'].get(night))} | "
                     f"{_num(m.get('parent_loss', {}).get(night))} | {_num(f)} |")
    lines += heldout_lines(run_dir, record)
    lines += _training(run_dir, record)
    choice = record.get("checkpoint_choice")
    if choice:
        lines += ["", "## Checkpoint choice (judged on the changed leaves' seed questions)", "",
                  f"Chosen: **{choice['chosen']}**. {md_text(choice.get('reason', ''), 500)}", "",
                  "| checkpoint | step | mean score | judge errors |", "|---|---|---|---|"]
        for c in choice["candidates"]:
            mark = " (chosen)" if c["name"] == choice["chosen"] else ""
            score = "—" if c.get("score") is None else f"{c['score']:.2f}"
            errors = "—" if c.get("judge_error_rate") is None else f"{c['judge_error_rate']:.0%}"
            lines.append(f"| {c['name']}{mark} | {c.get('step') or '—'} | {score} | {errors} |")
    branch = record.get("branch_eval")
    if branch:
        from ..evaluation.output import delta_chart, markdown

        lines += ["", "## Judged per-leaf evaluation (seed questions, this model vs the one it started from)", "",
                  *markdown(branch)]
        chart = delta_chart(branch, run_dir / "branch_eval.png", f"{record['id']}: judged score delta per leaf")
        if chart is not None:
            lines += ["", f"![{chart.stem}]({chart.name})"]
    plots = plots_of(run_dir, record, runs)
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    path = run_dir / "report.md"
    atomic_write(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return path


def heldout_headline(record: dict[str, Any]) -> str:
    """One line: how the candidate does on the held-out seeds against the model the lineage started from."""
    h = record.get("heldout") or {}
    rows = [v["ref_nll"] for v in (h.get("leaves") or {}).values() if (v.get("ref_nll") or {}).get("delta_base")
            is not None]
    if not rows:
        return ""
    better = sum(1 for r in rows if r["delta_base"] < 0)
    drift = (h.get("drift") or {}).get("delta_base")
    return (f"better than the base model on {better} of {len(rows)} leaves' held-out seeds (ref_nll, mean gain "
            f"{-sum(r['delta_base'] for r in rows) / len(rows):+.3f} nats/token)"
            + ("" if drift is None else f", drift {drift:+.3f} nats/token"))


def heldout_lines(run_dir: Path, record: dict[str, Any]) -> list[str]:
    """The held-out seeds' table (base → parent → candidate per leaf), the drift, a chart of the per-leaf gains
    and, for each changed leaf, one held-out question with the reference and the answers."""
    h = record.get("heldout") or {}
    leaves = h.get("leaves") or {}
    if not leaves and not h.get("not_measurable"):
        return []
    out = ["", "## Held-out seeds (never seen by a teacher, the training data or a replay buffer)", ""]
    headline = heldout_headline(record)
    if headline:
        out += [f"The candidate is {headline}.", ""]
    out += ["| leaf | ref_nll base → parent → candidate | gain on parent | ROUGE-L base → parent → candidate |",
            "|---|---|---|---|"]
    changed = set(record.get("leaves_regenerated") or ())
    for leaf, v in sorted(leaves.items()):
        n, r = v.get("ref_nll") or {}, v.get("rouge_l") or {}
        gain = None if n.get("delta") is None else -n["delta"]
        mark = " (changed)" if leaf in changed else ""
        out.append(f"| {md_text(leaf, 200)}{mark} | {_three(n)} | {'—' if gain is None else f'{gain:+.3f}'} | "
                   f"{_three(r)} |")
    drift = h.get("drift") or {}
    if drift.get("candidate") is not None:
        out += ["", f"Drift (nats/token on the base model's own replies to everyday prompts): base "
                f"{_num3(drift.get('base'))}, parent {_num3(drift.get('parent'))}, candidate "
                f"{_num3(drift.get('candidate'))} ({drift['delta']:+.3f} on the parent)."]
    if h.get("not_measurable"):
        out += ["", f"Not measurable (too few seed pairs to hold one out): "
                f"{', '.join(md_text(x, 200) for x in h['not_measurable'])}."]
    chart = gain_chart(run_dir, record["id"], leaves, h.get("leaf_pairs") or {})
    if chart is not None:
        out += ["", f"![{chart.stem}]({chart.name})"]
    examples = [(leaf, e) for leaf, e in sorted((h.get("examples") or {}).items()) if leaf in changed]
    for leaf, e in examples[:10]:
        out += ["", f"<details><summary>{md_text(leaf, 200)}: one held-out question</summary>", "",
                f"**Question:** {md_text(e.get('prompt', ''), 600)}", "",
                f"**Reference:** {md_text(e.get('reference', ''), 600)}", "",
                f"**Parent:** {md_text(e.get('parent', ''), 600)}", "",
                f"**Candidate:** {md_text(e.get('candidate', ''), 600)}", "", "</details>"]
    return out


def _num3(v: Any) -> str:
    return "—" if v is None else f"{v:.3f}"


def _three(v: dict[str, Any]) -> str:
    return f"{_num3(v.get('base'))} → {_num3(v.get('parent'))} → {_num3(v.get('candidate'))}"


def _training(run_dir: Path, record: dict[str, Any]) -> list[str]:
    """How tonight trained: with distillation, the teacher, λ and the reply (CE) and KD losses apart, first
    step -> last step (``metrics.jsonl``)."""
    from ..train.report import MetricsLog

    rows = MetricsLog(run_dir / "train" / "metrics.jsonl").records()
    if not rows:
        return []
    dc = record.get("distill")
    out = ["", "## Training", ""]
    if not dc:
        return out + [f"{len(rows)} optimizer steps, reply loss only (no distillation): "
                      f"{rows[0]['loss']:.3f} -> {rows[-1]['loss']:.3f} nats/token."]
    out += [f"{len(rows)} optimizer steps with online distillation from `{md_text(str(dc['teacher']), 200)}` "
            f"(λ = {dc['lambda']}: loss = (1 − λ)·reply + λ·KD).", "",
            "| term (nats/token) | first step | last step |", "|---|---|---|"]
    for term, what in (("loss_ce", "reply loss (cross-entropy)"), ("loss_pred", "KD loss (KL to the teacher)"),
                       ("loss_attn", "attention KD"), ("loss", "total")):
        if term in rows[0] and term in rows[-1]:
            out.append(f"| {what} | {rows[0][term]:.3f} | {rows[-1][term]:.3f} |")
    return out
