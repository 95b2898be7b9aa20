"""Which commit a command was written against: a pure function of what the bot has seen of a PR's heads.

Why a log and not "when was this SHA first seen": heads come back (a force-push A→B→A), pushes are missed (a
lost ``synchronize`` delivery) and GitHub's timestamps have one-second resolution. Each sighting says "this
SHA was the head at time t"; an *exact* one (a ``synchronize``/``opened`` event) also says "it became the head
at t", an inexact one (the PR as read from GitHub when a job ran) only "it became the head at or before t".
A comment binds to the head in force at its time when the log can tell, and is *ambiguous* when it cannot:
a push in the same second, or a head first seen only after the comment, with no exact time for its push.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Sighting:
    """``sha`` was the head of the PR at ``seen`` (epoch seconds); ``exact``: it became the head then."""

    sha: str
    seen: float
    exact: bool = True


@dataclass(frozen=True)
class Binding:
    """The head a comment binds to ("" when unknown), or ``ambiguous`` with the candidates named."""

    sha: str = ""
    ambiguous: bool = False
    candidates: tuple[str, ...] = ()


def bind(sightings: Iterable[Sighting], when: float) -> Binding:
    """The head in force at ``when`` (a comment's ``created_at``, whole seconds).

    Sightings are taken in the order given for equal times (the log's insertion order)."""
    log = sorted(sightings, key=lambda s: s.seen)  # stable: insertion order kept for equal times
    before = [s for s in log if s.seen < when]
    same = [s for s in log if s.seen == when]
    prev = before[-1].sha if before else ""
    changed = [s.sha for s in same if s.sha != prev]
    if changed:  # a push in the same second as the comment: which came first, GitHub does not say
        return Binding(ambiguous=True, candidates=tuple(dict.fromkeys([prev, *changed]) if prev else changed))
    later = next((s for s in log if s.seen > when and s.sha != prev), None)
    if later is not None and not later.exact:
        # first seen after the comment, with no time for its push: it may have been the head already
        return Binding(ambiguous=True, candidates=tuple(c for c in (prev, later.sha) if c))
    return Binding(sha=prev)


def newest(sightings: Iterable[Sighting]) -> str:
    """The most recent head in the log ("" if empty)."""
    log = sorted(sightings, key=lambda s: s.seen)
    return log[-1].sha if log else ""
