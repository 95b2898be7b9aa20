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


def summary(reports: list[Report], deleted: Iterable[str] = ()) -> str:
    leaves = sum(1 for r in reports if r.path != ".")
    errors = sum(len(r.errors) for r in reports)
    warnings = sum(len(r.warnings) for r in reports)
    deleted = list(deleted)
    verdict = "FAILED" if errors else "passed"
    text = f"{leaves} leaf(s) checked: {errors} error(s), {warnings} warning(s) — {verdict}"
    if deleted:
        text += f"\n{len(deleted)} leaf folder(s) deleted: " + ", ".join(deleted)
    return text


def as_json(reports: list[Report], prefix: str = "", deleted: Iterable[str] = ()) -> str:
    findings = []
    for f in _all(reports):
        d = f.to_dict()
        d["path"] = f"{prefix}{f.path}" if f.path != "." else prefix.rstrip("/") or "."
        findings.append(d)
    body = {
        "leaves": [r.path for r in reports if r.path != "."],
        "deleted": list(deleted),
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
