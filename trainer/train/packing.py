"""Which samples go into which optimizer step, rank and micro-batch: pure functions of lengths and a seed.

Why a precomputed plan: the whole run's order follows from the seed, so ``--resume`` needs only the step
number to continue exactly, and ``--dry-run`` can count steps and micro-batches without a model.

Packed (padding-free): a step's samples are spread over ranks by longest-processing-time first, then
first-fit-decreasing into micro-batches of at most ``max_tokens`` real tokens. Padded (the baseline, Hugging
Face's default collator): micro-batches in the step's random order, each padded to its longest sample,
as many samples as fit ``max_tokens`` padded tokens. An effective batch smaller than one micro-batch is
fine (upstream's packer crashed on it).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

MicroBatch = list[int]  # sample indices


@dataclass(frozen=True)
class Step:
    """One optimizer step: ``ranks[r]`` is rank r's micro-batches (each a list of sample indices)."""

    samples: tuple[int, ...]
    ranks: tuple[tuple[tuple[int, ...], ...], ...]

    def micro_batches(self, rank: int = 0) -> list[list[int]]:
        return [list(m) for m in self.ranks[rank]]


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """A permutation of range(n), the same for the same (seed, epoch) everywhere."""
    order = list(range(n))
    random.Random(f"labrador-order:{seed}:{epoch}").shuffle(order)
    return order


def step_samples(n: int, effective_batch: int, epochs: int, seed: int, max_steps: int = 0) -> list[list[int]]:
    """Sample indices per optimizer step: each epoch reshuffled, cut into ``effective_batch`` samples (the
    epoch's last step may be smaller), at most ``max_steps`` steps when it is not 0."""
    steps: list[list[int]] = []
    for epoch in range(epochs):
        order = epoch_order(n, seed, epoch)
        for i in range(0, n, effective_batch):
            steps.append(order[i : i + effective_batch])
            if max_steps and len(steps) >= max_steps:
                return steps
    return steps


def _split_ranks(samples: Sequence[int], lengths: Sequence[int], world: int) -> list[list[int]]:
    """Longest first, each to the rank with the fewest tokens so far (ties: lowest rank)."""
    ranks: list[list[int]] = [[] for _ in range(world)]
    load = [0] * world
    for i in sorted(samples, key=lambda i: (-lengths[i], i)):
        r = min(range(world), key=lambda r: (load[r], r))
        ranks[r].append(i)
        load[r] += lengths[i]
    return ranks


def pack(samples: Sequence[int], lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """First-fit decreasing into bins of at most ``max_tokens`` tokens (a sample longer than that gets a
    bin of its own; the config check keeps that from happening)."""
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(samples, key=lambda i: (-lengths[i], i)):
        for b, free in enumerate(room):
            if lengths[i] <= free:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(max_tokens - lengths[i])
    return bins


def pad_batches(samples: Sequence[int], lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """In the given order, as many samples per micro-batch as fit ``max_tokens`` once padded to the longest."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in samples:
        grown = max(longest, lengths[i])
        if current and grown * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, longest = [], 0
            grown = lengths[i]
        current.append(i)
        longest = grown
    if current:
        batches.append(current)
    return batches


def plan(
    lengths: Sequence[int],
    *,
    effective_batch: int,
    epochs: int,
    seed: int,
    max_tokens: int,
    packing: bool,
    world: int = 1,
    max_steps: int = 0,
) -> list[Step]:
    """The run's steps for one phase. Every rank gets the same number of steps; a rank may get no sample in
    a step (effective batch smaller than the world): it then runs no micro-batch and contributes zero."""
    steps = []
    for chosen in step_samples(len(lengths), effective_batch, epochs, seed, max_steps):
        per_rank = _split_ranks(chosen, lengths, world) if packing else [chosen[r::world] for r in range(world)]
        batches = tuple(
            tuple(tuple(m) for m in (pack(s, lengths, max_tokens) if packing else pad_batches(s, lengths, max_tokens)))
            for s in per_rank
        )
        steps.append(Step(tuple(chosen), batches))
    return steps


def padding_of(batch: Sequence[int], lengths: Sequence[int], packing: bool) -> int:
    """Padding tokens a micro-batch costs: none packed, the gap to the longest sample padded."""
    if packing or not batch:
        return 0
    longest = max(lengths[i] for i in batch)
    return sum(longest - lengths[i] for i in batch)
