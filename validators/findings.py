"""Findings and reports: the one vocabulary every front end (CLI, CI, bot) speaks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at one place. ``line``/``column`` are 1-based; 0 means "the whole file"."""

    check: str
    severity: Severity
    message: str
    line: int = 0
    column: int = 0
    hint: str = ""
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "check": self.check,
            "message": self.message,
            "hint": self.hint,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(
            check=d["check"],
            severity=d["severity"],
            message=d["message"],
            line=d.get("line", 0),
            column=d.get("column", 0),
            hint=d.get("hint", ""),
            path=d.get("path", ""),
        )


@dataclass(slots=True)
class Report:
    """What checking one leaf found, plus what later stages need (parsed data, branch, version)."""

    path: str
    findings: list[Finding] = field(default_factory=list)
    data: Any = None
    branch: str = ""
    version: int | None = None
    marks: dict[tuple, tuple[int, int]] = field(default_factory=dict, repr=False)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def sorted(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (f.path, f.line, f.column, f.check))
