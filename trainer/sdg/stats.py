"""Counters for one leaf: what each step took in, gave out, sent, and dropped (by reason).

Upstream SDG dropped unparseable output silently; here every drop has a named reason so a
contributor and a maintainer can see *why* a leaf yields few samples.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Every reason a row is dropped, and what it means (the legend of reports and previews). ``capped`` is not a
# quality verdict: a profile's or preview's row cap (``max_seeds``, ``max_rows``, ``max_samples``) left it out.
MEANINGS = {
    "parse_error": "the teacher's reply did not fit the prompt's format, even after retries",
    "truncated": "the reply hit its token cap before it ended",
    "empty": "the reply parsed to nothing usable",
    "judge_unparseable": "the judge's verdict could not be read",
    "judge_rejected": "the judge scored it below the bar",
    "duplicate": "too close to an earlier row",
    "teacher_error": "the teacher failed to answer",
    "render_error": "the prompt template could not be filled in for this row",
    "capped": "over the profile's row cap (a size limit, not a quality filter)",
}
REASONS = tuple(MEANINGS)


def legend(reasons: object) -> str:
    """One line saying what each named reason means, for the reasons that occur (empty when none)."""
    named = [r for r in MEANINGS if r in reasons]  # type: ignore[operator]
    return "; ".join(f"{r}: {MEANINGS[r]}" for r in named)


@dataclass
class StepStats:
    """One pipeline step's counts and wall time."""

    label: str
    type: str
    rows_in: int = 0
    rows_out: int = 0
    requests: int = 0  # requests the step needed
    cached: int = 0  # of those, answered from the checkpoint (not sent)
    sent: int = 0  # of those, sent to the teacher
    dropped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    structured: str = ""  # how its prompt's reply format reached the teacher: schema | words | "" (free text)
    schema_retries: int = 0  # replies that failed their schema and were asked again
    skipped: bool = False  # a judge step with judges off: every row passed unasked

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.label,
            "type": self.type,
            "in": self.rows_in,
            "out": self.rows_out,
            "requests": self.requests,
            "cached": self.cached,
            "sent": self.sent,
            "dropped": dict(sorted(self.dropped.items())),
            "seconds": round(self.seconds, 4),
            "structured": self.structured,
            "schema_retries": self.schema_retries,
            "skipped": self.skipped,
        }


@dataclass
class LeafStats:
    """All steps of one leaf; ``generated`` is the number of candidate samples the teacher proposed."""

    steps: list[StepStats] = field(default_factory=list)
    generated: int = 0
    errors: list[str] = field(default_factory=list)  # first few teacher/render error messages

    def dropped(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for s in self.steps:
            total.update(s.dropped)
        return dict(sorted(total.items()))

    def sent(self) -> int:
        return sum(s.sent for s in self.steps)

    def schema_retries(self) -> int:
        return sum(s.schema_retries for s in self.steps)

    def structured(self) -> str:
        """The leaf's mode over its parsed steps: schema, words, mixed, or "" (none parsed)."""
        modes = {s.structured for s in self.steps if s.structured}
        return modes.pop() if len(modes) == 1 else "mixed" if modes else ""

    def note_error(self, message: str, limit: int = 5) -> None:
        if len(self.errors) < limit and message not in self.errors:
            self.errors.append(message[:300])
