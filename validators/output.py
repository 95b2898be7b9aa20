"""Render findings for people (human), programs (json) and GitHub Actions (workflow annotations)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from .findings import Finding, Report


def _all(reports: Iterable[Report]) -> list[Finding]:
    return sorted((f for r in reports for f in r.findings), key=lambda f: (f.path, f.line, f.column, f.check))


def _where(f: Finding, prefix: str) -> str:
    path = f"{prefix}{f.path}" if f.path and f.path != "." else (prefix.rstrip("/") or ".")
    return f"{path}:{f.line}:{f.column}" if f.line else path


def human(reports: list[Report], prefix: str = "", color: bool = False) -> str:
    lines = []
    for f in _all(reports):
        sev = f.severity
        if color:
            sev = f"\x1b[31m{sev}\x1b[0m" if sev == "error" else f"\x1b[33m{sev}\x1b[0m"
        lines.append(f"{_where(f, prefix)}: {sev} [{f.check}] {f.message}")
        if f.hint:
            lines.append(f"    hint: {f.hint}")
    return "\n".join(lines)


def summary(reports: list[Report], deleted: Iterable[str] = (), renamed: Iterable[tuple[str, str]] = (),
            prefix: str = "", most: int = 10) -> str:
    """The verdict line, then which leaves were checked (the first ``most``), deleted and renamed."""
    names = [r.path.removesuffix("/qna.yaml") for r in reports if r.path != "."]
    errors = sum(len(r.errors) for r in reports)
    warnings = sum(len(r.warnings) for r in reports)
    deleted, renamed = list(deleted), list(renamed)
    verdict = "FAILED" if errors else "passed"
    if not reports and not deleted and not renamed:  # nothing to pass or fail: say so, never "passed"
        return "0 leaves checked: nothing to check"
    text = f"{len(names)} leaf(s) checked: {errors} error(s), {warnings} warning(s) — {verdict}"
    if names:
        more = f" and {len(names) - most} more" if len(names) > most else ""
        text += "\nchecked: " + ", ".join(prefix + n for n in names[:most]) + more
    if deleted:
        text += f"\n{len(deleted)} leaf folder(s) deleted: " + ", ".join(prefix + d for d in deleted)
    if renamed:
        text += f"\n{len(renamed)} leaf folder(s) renamed: " + ", ".join(f"{prefix}{a} → {prefix}{b}"
                                                                         for a, b in renamed)
    return text


def as_json(reports: list[Report], prefix: str = "", deleted: Iterable[str] = (),
            renamed: Iterable[tuple[str, str]] = ()) -> str:
    """Every path repository-relative (``taxonomy`` says where the taxonomy is), so tools need one base."""
    findings = []
    for f in _all(reports):
        d = f.to_dict()
        d["path"] = f"{prefix}{f.path}" if f.path != "." else prefix.rstrip("/") or "."
        findings.append(d)
    body = {
        "taxonomy": prefix.rstrip("/") or ".",
        "leaves": [prefix + r.path for r in reports if r.path != "."],
        "deleted": [prefix + d for d in deleted],
        "renamed": [[prefix + a, prefix + b] for a, b in renamed],
        "errors": sum(1 for f in findings if f["severity"] == "error"),
        "warnings": sum(1 for f in findings if f["severity"] == "warning"),
        "findings": findings,
    }
    return json.dumps(body, indent=2)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github(reports: list[Report], prefix: str = "") -> str:
    """``::error file=...,line=...,col=...,title=...::message`` lines (GitHub workflow commands)."""
    lines = []
    for f in _all(reports):
        props = [f"file={_escape_prop(prefix + f.path if f.path != '.' else prefix.rstrip('/') or '.')}"]
        if f.line:
            props += [f"line={f.line}", f"col={f.column}"]
        props.append(f"title={_escape_prop(f.check)}")
        message = f.message + (f"\n{f.hint}" if f.hint else "")
        lines.append(f"::{f.severity} {','.join(props)}::{_escape_data(message)}")
    return "\n".join(lines)
