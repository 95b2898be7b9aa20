"""The step plan: every sample once per epoch, micro-batches within the token budget, ranks balanced,
padded baseline laid out like Hugging Face's collator. Pure functions: no torch."""

from __future__ import annotations

import random

import pytest

from labrador.trainer.train.packing import pack, pad_batches, padding_of, plan, step_samples


def lengths(n=300, seed=0):
    rng = random.Random(seed)
    return [rng.choice([rng.randint(20, 60), rng.randint(300, 900)]) for _ in range(n)]


def test_each_epoch_uses_every_sample_once_and_order_follows_the_seed():
    steps = step_samples(100, 32, epochs=2, seed=7)
    assert [len(s) for s in steps] == [32, 32, 32, 4] * 2
    first, second = sum(steps[:4], []), sum(steps[4:], [])
    assert sorted(first) == sorted(second) == list(range(100)) and first != second
    assert steps == step_samples(100, 32, epochs=2, seed=7)
    assert steps != step_samples(100, 32, epochs=2, seed=8)
    assert len(step_samples(100, 32, epochs=2, seed=7, max_steps=3)) == 3


@pytest.mark.parametrize("packing", [True, False])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_micro_batches_cover_the_step_and_fit_the_budget(packing, world):
    ls = lengths()
    for step in plan(ls, effective_batch=64, epochs=1, seed=0, max_tokens=2048, packing=packing, world=world):
        seen = [i for r in range(world) for m in step.ranks[r] for i in m]
        assert sorted(seen) == sorted(step.samples)
        for r in range(world):
            for m in step.ranks[r]:
                cost = sum(ls[i] for i in m) if packing else max(ls[i] for i in m) * len(m)
                assert cost <= 2048


def test_effective_batch_smaller_than_a_micro_batch_and_than_the_world():
    ls = [30] * 10
    steps = plan(ls, effective_batch=1, epochs=1, seed=0, max_tokens=4096, packing=True, world=4)
    assert len(steps) == 10
    assert all(sum(len(r) for r in s.ranks) == 1 for s in steps)  # three ranks idle each step, none crash


def test_packing_balances_tokens_across_ranks():
    ls = lengths(512, seed=3)
    step = plan(ls, effective_batch=512, epochs=1, seed=0, max_tokens=8192, packing=True, world=4)[0]
    loads = [sum(ls[i] for m in step.ranks[r] for i in m) for r in range(4)]
    assert max(loads) - min(loads) <= max(ls)


def test_first_fit_decreasing_and_padded_layout():
    assert pack([0, 1, 2, 3], [5, 4, 3, 2], max_tokens=7) == [[0, 3], [1, 2]]
    assert pad_batches([0, 1, 2, 3], [5, 4, 3, 2], max_tokens=10) == [[0, 1], [2, 3]]
    assert padding_of([0, 1], [5, 4, 3, 2], packing=False) == 1
    assert padding_of([0, 1], [5, 4, 3, 2], packing=True) == 0


def test_packed_waste_is_far_below_padded_on_skewed_lengths():
    ls = lengths(1000, seed=1)
    padded = plan(ls, effective_batch=128, epochs=1, seed=0, max_tokens=4096, packing=False)
    packed = plan(ls, effective_batch=128, epochs=1, seed=0, max_tokens=4096, packing=True)
    pad_tokens = sum(padding_of(list(m), ls, False) for s in padded for m in s.ranks[0])
    assert pad_tokens / sum(ls) > 0.2
    assert sum(len(s.ranks[0]) for s in packed) < sum(len(s.ranks[0]) for s in padded)
