"""The mixing core: a pure, seeded function from samples per leaf to rows per phase.

Why pure: the nightly job, ``labrador generate`` and tests must get the same bytes from the same
inputs, and a pure function is easy to check exhaustively. Every random choice draws from its own
``random.Random`` seeded by (run seed, phase, group or source[, leaf]): no global random state, no
dependence on dict or completion order, and a leaf's per-leaf cap never depends on other leaves.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .recipe import Recipe, Replay, selects

Row = dict[str, Any]
Tagged = list[tuple[str, Row]]  # (leaf or source, row)


@dataclass
class Mix:
    """Rows per phase, plus the counts that go into ``mix_manifest.json``."""

    phases: dict[str, list[Row]]
    manifest: dict[str, Any] = field(default_factory=dict)


def _rng(*parts: object) -> random.Random:
    # str seeds are hashed with SHA-512 by random.Random: stable across processes and PYTHONHASHSEED.
    return random.Random("|".join(str(p) for p in parts))


def scale(rows: Sequence[Any], ratio: float, rng: random.Random) -> list[Any]:
    """``round(ratio * len(rows))`` items: a subset without replacement when ``ratio <= 1``, else whole
    copies plus a random remainder (upsampling), keeping the input order inside each copy."""
    n = len(rows)
    target = int(ratio * n + 0.5)
    if n == 0 or target == 0:
        return []
    copies, rest = divmod(target, n)
    picked = sorted(rng.sample(range(n), rest))
    return list(rows) * copies + [rows[i] for i in picked]


def cap(rows: Sequence[Any], limit: int | None, rng: random.Random) -> list[Any]:
    """At most ``limit`` items, chosen at random but kept in input order."""
    if limit is None or len(rows) <= limit:
        return list(rows)
    return [rows[i] for i in sorted(rng.sample(range(len(rows)), limit))]


def _by_leaf(tagged: Tagged) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for leaf, row in tagged:
        out.setdefault(leaf, []).append(row)
    return out


def _replay_rows(spec: Replay, pool: Tagged, seed: int, phase: str, index: int) -> Tagged:
    chosen: Tagged = []
    for leaf, rows in sorted(_by_leaf(pool).items()):
        if selects(spec.include, spec.exclude, leaf):
            chosen += [(leaf, r) for r in cap(rows, spec.max_per_leaf, _rng(seed, phase, "replay", index, leaf))]
    return scale(chosen, spec.fraction, _rng(seed, phase, "replay", index))


def plan(recipe: Recipe, samples_by_leaf: Mapping[str, Sequence[Row]],
         replay_sources: Mapping[str, Sequence[Row]] | None = None, seed: int = 0) -> Mix:
    """Assign leaves to phases (first matching group wins, in recipe order), cap and scale each group,
    add replay from earlier phases and datasets, and shuffle each phase deterministically.

    ``replay_sources`` maps a recipe's ``dataset`` strings to their rows; a dataset that is absent
    from it is counted as missing (the I/O edge decides whether that is an error).
    """
    replay_sources = replay_sources or {}
    owner: dict[str, tuple[str, str]] = {}
    for leaf in sorted(samples_by_leaf):
        for phase in recipe.phases:
            group = next((g for g in phase.groups if selects(g.include, g.exclude, leaf)), None)
            if group is not None:
                owner[leaf] = (phase.name, group.name)
                break
    own: dict[str, Tagged] = {}
    phases: dict[str, list[Row]] = {}
    manifest: dict[str, Any] = {"seed": seed, "recipe": recipe.source, "recipe_sha256": recipe.sha256,
                                "unassigned": sorted(set(samples_by_leaf) - set(owner)), "phases": {}}
    for phase in recipe.phases:
        tagged: Tagged = []
        groups: dict[str, int] = {}
        for group in phase.groups:
            rows: Tagged = []
            for leaf in sorted(samples_by_leaf):
                if owner.get(leaf) == (phase.name, group.name):
                    capped = cap(samples_by_leaf[leaf], group.max_per_leaf, _rng(seed, phase.name, group.name, leaf))
                    rows += [(leaf, r) for r in capped]
            rows = scale(rows, group.ratio, _rng(seed, phase.name, group.name))
            groups[group.name] = len(rows)
            tagged += rows
        own[phase.name] = tagged
        replayed: Tagged = []
        replay_counts: dict[str, int] = {}
        missing: list[str] = []
        for index, spec in enumerate(phase.replay):
            if spec.phase is not None:
                pool = own[spec.phase]
            elif spec.dataset in replay_sources:
                pool = [(str(r.get("leaf") or spec.source), r) for r in replay_sources[spec.dataset]]
            else:
                missing.append(spec.source)
                continue
            rows = _replay_rows(spec, pool, seed, phase.name, index)
            replay_counts[spec.source] = replay_counts.get(spec.source, 0) + len(rows)
            replayed += rows
        mixed = tagged + replayed
        _rng(seed, phase.name, "shuffle").shuffle(mixed)
        phases[phase.name] = [row for _, row in mixed]
        manifest["phases"][phase.name] = {
            "rows": len(mixed), "own": len(tagged), "replayed": len(replayed), "groups": groups,
            "leaves": dict(sorted(Counter(leaf for leaf, _ in tagged).items())),
            "replay": replay_counts,
            "replay_leaves": dict(sorted(Counter(leaf for leaf, _ in replayed).items())),
            "missing_replay": missing,
        }
    return Mix(phases, manifest)


def mix(recipe: Recipe, samples_by_leaf: Mapping[str, Sequence[Row]],
        replay_sources: Mapping[str, Sequence[Row]] | None = None, seed: int = 0) -> dict[str, list[Row]]:
    """Rows per phase (see :func:`plan`, which also returns the manifest counts)."""
    return plan(recipe, samples_by_leaf, replay_sources, seed).phases
