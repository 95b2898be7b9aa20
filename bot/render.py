"""The sticky comment and check-run summaries: verdict, findings per leaf, previews beside the seeds.

Pure functions of reports and results. Everything that came from a contributor or the teacher goes through
``labrador.trainer.markdown`` (``text`` / ``html`` / ``code_block``); the result always fits GitHub's limits. Each
leaf's preview is ``labrador.trainer.preview``'s, the Markdown ``labrador check`` prints, inside the bot's own heading.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from labrador.trainer import markdown as md
from labrador.trainer.preview import preview_blocks
from labrador.validators import Report
from labrador.validators.changes import Changes

from .forge import MAX_SUMMARY, STICKY_MARKER, CheckOutput
from .preview import PreviewResult

LIMIT = 65_536  # GitHub's comment body limit, in characters
SECTIONS = ("notice", "validation", "preview")
BUDGETS = {"notice": 3_000, "validation": 22_000, "preview": 36_000}
_SECTION = re.compile(r"<!-- labrador:section:([a-z]+) -->\n(.*?)\n<!-- labrador:end:\1 -->", re.S)
HELP = ("`/lab preview` generates a few synthetic samples from the changed leaves of the commit you comment on "
        "(write access or the maintainers team). `/lab retry` validates that commit again. `/lab help` shows this.")


@dataclass
class LeafPreview:
    path: str  # taxonomy-relative qna.yaml path
    seeds: list[dict[str, str]]
    result: PreviewResult | None = None
    skipped: str = ""  # why no preview ran for this leaf


def counts(reports: Sequence[Report]) -> tuple[int, int]:
    return sum(len(r.errors) for r in reports), sum(len(r.warnings) for r in reports)


def verdict_line(reports: Sequence[Report], changes: Changes, head: str, skipped: int = 0) -> str:
    errors, warnings = counts(reports)
    mark = "❌ Validation failed" if errors or skipped else "✅ Validation passed"
    leaves = sum(1 for r in reports if r.path != ".")
    line = f"### {mark} for {md.sha(head)}\n\n{leaves} leaf(s) checked: {errors} error(s), {warnings} warning(s)."
    if changes.deleted:
        gone = ", ".join(md.text(d, 200) for d in changes.deleted)
        line += f" {len(changes.deleted)} leaf folder(s) deleted: {gone}."
    if skipped:
        line += (f" {skipped} more changed leaf(s) were not checked (the bot's limit, `max_leaves`, was reached), "
                 "so this check cannot pass: split the pull request, or raise `max_leaves` in the bot's settings.")
    if not reports and not changes.deleted:
        line += " This pull request changes no taxonomy leaf."
    return line


def findings_blocks(reports: Sequence[Report], prefix: str) -> list[str]:
    """A table per leaf: where (file:line:col), check id, message, hint."""
    head = f"{prefix}/" if prefix else ""
    blocks = []
    for report in reports:
        if not report.findings:
            continue
        rows = []
        for f in report.sorted():
            where = head + (f.path or report.path) + (f":{f.line}:{f.column}" if f.line else "")
            icon = "❌" if f.severity == "error" else "⚠️"
            rows.append([f"{icon} {md.text(where, 300)}", md.text(f.check, 60), md.text(f.message, 600),
                         md.text(f.hint, 400)])
        blocks.append(f"#### {md.text(head + report.path, 300)}\n\n"
                      + md.table(["where", "check", "message", "hint"], rows))
    return blocks


def validation_section(reports: Sequence[Report], changes: Changes, head: str, prefix: str,
                       skipped: int = 0) -> str:
    top = verdict_line(reports, changes, head, skipped)
    return top + "\n\n" + md.fit(findings_blocks(reports, prefix), BUDGETS["validation"] - len(top),
                                 "{n} more leaf table(s) not shown; every finding is annotated on the check run.")


def check_output(reports: Sequence[Report], changes: Changes, head: str, prefix: str, annotations: tuple = (),
                 skipped: int = 0) -> CheckOutput:
    errors, warnings = counts(reports)
    title = f"{errors} error(s), {warnings} warning(s) in {len(reports)} leaf(s)"
    summary = verdict_line(reports, changes, head, skipped) + "\n\n" + md.fit(
        findings_blocks(reports, prefix), MAX_SUMMARY - 2_000, "{n} more leaf table(s); see the annotations.")
    return CheckOutput(title, summary, annotations=annotations)


def preview_section(leaves: Sequence[LeafPreview], head: str, requester: str, skipped: int = 0) -> str:
    top = f"### 🔎 Preview for {md.sha(head)}, requested by {md.user(requester)}"
    if skipped:
        top += f"\n\n{skipped} more leaf folder(s) were not previewed (limit reached)."
    blocks = [b for leaf in leaves for b in preview_blocks(leaf.path, leaf.seeds, leaf.result, leaf.skipped)]
    blocks = blocks or ["_No valid changed leaf to preview._"]
    return top + "\n\n" + md.fit(blocks, BUDGETS["preview"] - len(top))


def notice(requester: str, command: str, message: str) -> str:
    """A short reply to a command, addressed to whoever typed it; ``message`` must already be safe."""
    said = md.text(command or "/lab", 100)
    return f"> {md.user(requester)} ({said}): {message}"


def refused(requester: str, command: str) -> str:
    return notice(requester, command, "sorry, this command is for people with write access to the repository "
                  "or members of the maintainers team. A maintainer can run it for you; validation runs on "
                  "every push anyway.")


def head_moved(requester: str, command: str, bound: str, current: str) -> str:
    return notice(requester, command, f"your command was for {md.sha(bound)}, but the pull request head is now "
                  f"{md.sha(current)}. I did not run it on the newer, unreviewed commit: please comment again to "
                  "run it there.")


def unknown_head(requester: str, command: str, current: str) -> str:
    return notice(requester, command, "I could not tell which commit your command was written for (I saw no "
                  f"push for this pull request before it). The head is now {md.sha(current)}; comment again to "
                  "run the command there.")


def unreadable_time(requester: str, command: str, current: str) -> str:
    return notice(requester, command, "I could not read when this comment was made (GitHub sent no readable time), "
                  "so I cannot tell which commit it was written for. The head is now "
                  f"{md.sha(current)}; comment again to run the command there.")


def ambiguous_head(requester: str, command: str, candidates: tuple[str, ...], current: str) -> str:
    shas = " or ".join(md.sha(c) for c in candidates) or "an earlier commit"
    return notice(requester, command, f"I cannot tell whether your command was written for {shas}: the pull "
                  "request's head changed around the time of your comment (GitHub's times are whole seconds, "
                  f"and I may have missed a push), so I did not guess. The head is now {md.sha(current)}; comment "
                  "again to run the command there.")


def help_text(requester: str, command: str) -> str:
    return notice(requester, command, HELP)


def parse_sticky(body: str) -> dict[str, str]:
    """Sections of an existing sticky comment, so one part can change while the others stay."""
    if not body.startswith(STICKY_MARKER):
        return {}
    return {m.group(1): m.group(2) for m in _SECTION.finditer(body) if m.group(1) in SECTIONS}


def compose(sections: dict[str, str]) -> str:
    """The sticky comment: marker first (how we find it), then the non-empty sections, within GitHub's limit."""
    parts = {k: v for k, v in sections.items() if k in SECTIONS and v.strip()}
    while True:
        body = "\n".join([STICKY_MARKER, "## Labrador", "",
                          *(f"<!-- labrador:section:{k} -->\n{parts[k]}\n<!-- labrador:end:{k} -->\n"
                            for k in SECTIONS if k in parts),
                          "<sub>Commands: <code>/lab preview</code> · <code>/lab retry</code> · "
                          "<code>/lab help</code></sub>"])
        if len(body) <= LIMIT or not parts:
            return body
        biggest = max(parts, key=lambda k: len(parts[k]))
        parts[biggest] = "_This part was too large for a comment; see the check run._"
