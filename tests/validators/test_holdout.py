"""Held-out seeds: chosen by hash, stable from night to night (adding a seed never moves the choice), a
knowledge pair held out with its context kept, a leaf with too few pairs "not measurable", and the rows of a
held-out pair recognised wherever they would come back (replay)."""

from __future__ import annotations

from labrador.validators.holdout import choose, heldout_pairs, is_heldout_row, pairs, seed_id, without

LEAF = "compositional_skills/writing/freeform/haiku"


def skill(*questions: str) -> dict:
    return {"version": 3, "seed_examples": [{"question": q, "answer": f"answer to {q}"} for q in questions]}


def test_the_choice_is_the_smallest_hashes_and_survives_a_new_seed():
    data = skill(*(f"q{i}" for i in range(6)))
    first = choose(LEAF, data, 1)
    assert first == [min(seed_id(LEAF, f"q{i}") for i in range(6))]
    assert choose(LEAF, data, 2) == sorted(seed_id(LEAF, f"q{i}") for i in range(6))[:2]
    # a new seed whose hash is smaller than every old one does not move last night's choice...
    new = next(f"n{k}" for k in range(1000) if seed_id(LEAF, f"n{k}") < first[0])
    grown = skill(*(f"q{i}" for i in range(6)), new)
    assert choose(LEAF, grown, 1, previous=first) == first
    assert choose(LEAF, grown, 1) == [seed_id(LEAF, new)]  # ...though a first choice would take it
    # a held-out seed that was deleted is replaced
    held_q = next(f"q{i}" for i in range(6) if seed_id(LEAF, f"q{i}") == first[0])
    shrunk = skill(*(f"q{i}" for i in range(6) if f"q{i}" != held_q))
    assert choose(LEAF, shrunk, 1, previous=first) != first


def test_a_leaf_with_too_few_pairs_is_not_measurable_and_zero_turns_it_off():
    assert choose(LEAF, skill("only"), 1) is None
    assert choose(LEAF, skill("a", "b"), 1) is not None
    assert choose(LEAF, skill("a", "b"), 0) == []


def test_without_removes_exactly_the_held_pairs_and_keeps_a_knowledge_context():
    knowledge = {"version": 3, "seed_examples": [
        {"context": "C1", "questions_and_answers": [{"question": "k1", "answer": "a1"},
                                                    {"question": "k2", "answer": "a2"}]},
        {"context": "C2", "questions_and_answers": [{"question": "k3", "answer": "a3"}]}]}
    leaf = "knowledge/x"
    held = [seed_id(leaf, "k2"), seed_id(leaf, "k3")]
    left = without(knowledge, leaf, held)
    assert left["seed_examples"] == [{"context": "C1", "questions_and_answers": [{"question": "k1", "answer": "a1"}]}]
    assert knowledge["seed_examples"][0]["questions_and_answers"][1]["question"] == "k2"  # the input is untouched
    got = heldout_pairs(leaf, knowledge, held)
    assert [(p.prompt, p.reference) for p in got] == [("C1\n\nk2", "a2"), ("C2\n\nk3", "a3")]
    assert len(pairs(leaf, knowledge)) == 3


def test_a_held_out_pair_is_recognised_in_a_training_row():
    texts = [("C1\n\nk2", "a2")]
    row = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "C1\n\nk2"},
                        {"role": "assistant", "content": "a2"}]}
    assert is_heldout_row(row, texts)
    assert not is_heldout_row({"messages": [{"role": "user", "content": "C1\n\nk2"},
                                            {"role": "assistant", "content": "another answer"}]}, texts)
