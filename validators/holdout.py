"""Held-out seeds: per leaf, a few seed question/answer pairs that no teacher, training set, mix or replay buffer
ever sees, so a night can show on *new* questions of a merged leaf whether the model learnt it.

Pure functions of a parsed leaf. A pair is named by the hash of its leaf and question (:func:`seed_id`), and
the choice is stable: the pairs held out last night stay held out while they are still in the leaf (adding a
seed never moves the choice); only a leaf without enough of them gets new ones, smallest hash first. For a
knowledge leaf one question/answer pair is held out and its context stays (the other pairs of that context
still teach it). A leaf with too few pairs keeps them all for generation and is "not measurable".
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from labrador.validators.seeds import seed_examples

GENERATION_PAIRS = 1  # pairs a leaf must keep for the generator, beyond the held-out ones


def seed_id(leaf: str, question: str) -> str:
    """A pair's stable name: 16 hex digits of sha256(leaf folder, NUL, question stripped)."""
    return hashlib.sha256(f"{leaf}\0{question.strip()}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class HeldOut:
    """One held-out pair: ``prompt`` is what the model is asked (the context, if any, before the question),
    ``reference`` the contributor's answer."""

    leaf: str
    id: str
    prompt: str
    reference: str


def pairs(leaf: str, data: Any) -> list[HeldOut]:
    """Every seed pair of a parsed leaf, in file order, as it would be asked."""
    out = []
    for seed in seed_examples(data):
        for qa in seed.pairs:
            if qa.question and qa.answer:
                prompt = f"{seed.context}\n\n{qa.question}".strip()
                out.append(HeldOut(leaf, seed_id(leaf, qa.question), prompt, qa.answer))
    return out


def choose(leaf: str, data: Any, n: int, previous: Collection[str] = ()) -> list[str] | None:
    """The ids of the ``n`` pairs held out of ``leaf``, sorted; ``None`` when it has too few pairs to spare
    (not measurable: every pair stays for generation). ``previous``: last night's choice, kept where still
    there."""
    if n <= 0:
        return []
    ids = list(dict.fromkeys(p.id for p in pairs(leaf, data)))  # a question asked twice is one pair
    if len(ids) < n + GENERATION_PAIRS:
        return None
    kept = [i for i in ids if i in set(previous)][:n]
    fresh = sorted(i for i in ids if i not in kept)
    return sorted(kept + fresh[: n - len(kept)])


def without(data: Mapping[str, Any], leaf: str, held: Collection[str]) -> dict[str, Any]:
    """A copy of the parsed leaf without the held-out pairs (a knowledge seed keeps its context and its other
    pairs; a seed left with no pair is dropped)."""
    held = set(held)
    out = copy.deepcopy(dict(data))
    items = out.get("seed_examples")
    if not held or not isinstance(items, list):
        return out
    kept_items = []
    for seed in items:
        if not isinstance(seed, dict):
            kept_items.append(seed)
            continue
        qas = seed.get("questions_and_answers")
        if isinstance(qas, list):
            left = [qa for qa in qas if not (isinstance(qa, dict) and seed_id(leaf, str(qa.get("question") or ""))
                                             in held)]
            if left:
                kept_items.append({**seed, "questions_and_answers": left})
        elif seed_id(leaf, str(seed.get("question") or "")) not in held:
            kept_items.append(seed)
    out["seed_examples"] = kept_items
    return out


def heldout_pairs(leaf: str, data: Any, held: Collection[str]) -> list[HeldOut]:
    """The held-out pairs themselves, in file order."""
    held = set(held)
    return [p for p in pairs(leaf, data) if p.id in held]


def is_heldout_row(row: Mapping[str, Any], texts: Collection[tuple[str, str]]) -> bool:
    """A training row that *is* a held-out pair (its user turn and reply): an earlier night's seed row must not
    come back through a replay buffer. ``texts``: (prompt, reference) of every held-out pair."""
    messages = row.get("messages")
    if not isinstance(messages, list):
        return False
    turns = [(m.get("role"), str(m.get("content") or "").strip()) for m in messages if isinstance(m, Mapping)]
    asked = [c for r, c in turns if r == "user"]
    said = [c for r, c in turns if r == "assistant"]
    return any(p in asked and a in said for p, a in texts)
