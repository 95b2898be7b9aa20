"""Caps on a generation run (previews, profiles, budgets): plain data that steps read and the cache key holds."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Caps for previews and budgets. All but ``window`` change the output, so they enter the cache key."""

    max_seeds: int | None = None  # seed examples used
    max_chunks: int | None = None  # document chunks used (knowledge)
    max_rows: int | None = None  # rows entering each teacher step
    max_samples: int | None = None  # samples written
    n: int | None = None  # cap on completions per generate request
    num: int | None = None  # overrides a prompt's ``num`` variable (items asked for per completion)
    max_tokens: int | None = None  # cap on every request's max_tokens (small CPU teachers)
    judge_max_tokens: int | None = None  # tighter cap for judges (a verdict is a few tokens; small models ramble)
    max_temperature: float | None = None  # cap on sampling temperature (small models degenerate when hot)
    window: int = 2048  # requests gathered at once per step (memory bound only)
    structured: bool = True  # requests carry their prompt's reply schema for the backend to enforce
    parse_retries: int = 2  # a reply that fails its schema is asked again (new seed) up to this many times
    judges: bool = True  # judge steps run; off: they pass every row on (a teacher too small to judge)

    def key_params(self) -> dict[str, Any]:
        """What enters the leaf key; ``structured`` only when off, so keys made before it existed hold. The
        window and the retries do not: a checkpointed answer is the same answer however it was reached."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("window", "parse_retries") and (k not in ("structured", "judges") or not v)}

    @classmethod
    def preview(cls, samples: int = 3) -> Limits:
        """Small and fast for a PR preview: a few seeds and chunks, at most two completions per request,
        and at most ``4 * samples`` rows into each teacher step (judges drop some, so ask for more)."""
        return cls(max_seeds=3, max_chunks=2, max_rows=4 * samples, max_samples=samples, n=2, num=max(3, samples))

    @classmethod
    def profile(cls, name: str, *, structured: bool = True, judges: bool | None = None) -> Limits:
        """A generation profile by name: ``full`` (the pipelines as written) or ``quick`` (CPU-sized teachers:
        one seed (one document chunk), three questions asked, at most three rows into each teacher step, one
        completion, replies capped at 160 tokens, temperature at most 0.7, and no judges).

        Why the quick profile skips the judges: measured on the embedded SmolLM2-135M, its verdicts carry no
        signal (it scores every answer pair the same, good or bad, and passes about a third of the seed
        questions themselves), so a judge step only throws rows away at random. InstructLab's ``simple``
        pipeline, its choice for small local teachers, has no judges either. ``judges`` (True/False) overrides
        the profile's choice."""
        if name == "full":
            return cls(structured=structured, judges=True if judges is None else judges)
        if name == "quick":
            return cls(max_seeds=1, max_chunks=1, max_rows=3, n=1, num=3, max_tokens=160, judge_max_tokens=64,
                       max_temperature=0.7, structured=structured, judges=False if judges is None else judges)
        raise ValueError(f"unknown generation profile {name!r}: use full or quick")

    @classmethod
    def for_teacher(cls, settings: Any) -> Limits:
        """The profile a ``TeacherSettings`` asks for (its profile, structured and judges settings)."""
        return cls.profile(settings.profile_name, structured=settings.structured_on, judges=settings.judges_on)

    def merged(self, other: Limits) -> Limits:
        """The tighter of two sets of caps (a preview under the quick profile)."""
        def tight(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else min(a, b)

        return Limits(**{f: tight(getattr(self, f), getattr(other, f)) for f in
                         ("max_seeds", "max_chunks", "max_rows", "max_samples", "n", "num", "max_tokens",
                          "judge_max_tokens", "max_temperature")},
                      window=min(self.window, other.window), structured=self.structured and other.structured,
                      parse_retries=min(self.parse_retries, other.parse_retries),
                      judges=self.judges and other.judges)
