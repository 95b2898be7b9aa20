"""Held-out seeds through two real nights (tiny model, recorded teacher): a held-out pair never reaches a
teacher request, tonight's data, the mix or a replay buffer; adding a seed keeps the choice; the night measures
the candidate, its parent and the base on them, reports it, and the gate refuses a night whose held-out loss
rose, naming the leaf and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pygit2
import pytest

pytest.importorskip("torch")
pytest.importorskip("rouge_score")
from nightkit import HAIKU, commit_all, night, settings  # noqa: E402, F401

from labrador.trainer.nightly.gate import heldout_gate  # noqa: E402
from labrador.trainer.nightly.settings import NightlySettings  # noqa: E402
from labrador.trainer.teachers.replay import ReplayTeacher  # noqa: E402
from labrador.validators.holdout import heldout_pairs  # noqa: E402


def held_texts(work: Path, record: dict) -> list[tuple[str, str, str]]:
    import yaml

    out = []
    for leaf, ids in record["heldout_seeds"].items():
        if ids:
            data = yaml.safe_load((work / "taxonomy" / leaf / "qna.yaml").read_text())
            out += [(leaf, p.prompt.split("\n\n")[-1], p.reference) for p in heldout_pairs(leaf, data, ids)]
    return out


def rows_text(path: str | Path) -> str:
    return "\n".join(m["content"] for line in Path(path).read_text().splitlines()
                     for m in json.loads(line)["messages"])


def test_held_out_seeds_are_never_seen_and_are_measured_across_two_nights(repo, tmp_path, monkeypatch,
                                                                          recording, base_model):
    (repo / "labrador.toml").write_text(settings(recording, base_model, include_seeds="true",
                                                 min_heldout_gain=5.0, max_leaf_nll_rise=100.0,
                                                 max_drift=100.0, gate_require_improvement="false"))
    commit_all(pygit2.Repository(str(repo)), "settings")
    asked: list[str] = []
    original = ReplayTeacher.complete

    async def spy(self, request):
        text = "\n".join(content for _, content in request.messages)
        if "[Reference]" not in text:  # the judge of the judged evaluation reads seed questions by design
            asked.append(text)
        return await original(self, request)

    monkeypatch.setattr(ReplayTeacher, "complete", spy)
    state = tmp_path / "state"
    first = night(repo, state)
    held = held_texts(repo, first)
    assert len(held) == len([ids for ids in first["heldout_seeds"].values() if ids]) >= 3
    prompts = "\n".join(asked)
    assert asked and not [q for _, q, _ in held if q in prompts]  # no teacher request ever showed one
    for data in (first["datasets"]["new"], first["datasets"]["mix"]):
        text = rows_text(data)
        assert not [q for _, q, a in held if q in text and a in text], data
    h = first["heldout"]
    assert set(h["leaves"]) == {leaf for leaf, _, _ in held} and h["pairs"] == len(held)
    some = next(iter(h["leaves"].values()))
    assert some["ref_nll"]["candidate"] is not None and some["ref_nll"]["base"] == some["ref_nll"]["parent"]
    assert h["drift"]["candidate"] is not None and (state / "drift").is_dir()
    # the gate asked for a 5-nats gain: refused, naming the key
    assert first["status"] == "rejected" and "min_heldout_gain" in first["reason"]
    report = Path(first["report"]).read_text()
    assert "## Held-out seeds" in report and "heldout_gain.png" in report

    (repo / "labrador.toml").write_text(settings(recording, base_model, include_seeds="true", max_drift=100.0,
                                                 max_leaf_nll_rise=100.0, gate_require_improvement="false"))
    qna = repo / "taxonomy" / HAIKU / "qna.yaml"
    import yaml

    data = yaml.safe_load(qna.read_text())
    data["seed_examples"].append({"question": "Write a haiku about a brand new umbrella.",
                                  "answer": "Red umbrella blooms\\nunder a grey city sky\\nrain taps, I stay dry"})
    qna.write_text(yaml.safe_dump(data, sort_keys=False))
    commit_all(pygit2.Repository(str(repo)), "a new haiku seed")
    asked.clear()
    from labrador.trainer.evaluation import metrics

    loaded: list[str] = []
    real_init = metrics.LoadedModel.__init__

    def counting(self, path):
        loaded.append(str(path))
        real_init(self, path)

    monkeypatch.setattr(metrics.LoadedModel, "__init__", counting)
    second = night(repo, state)
    # the parent (and base) were measured last night on the same pairs: only the new candidate is loaded
    assert loaded == [second["model"]], loaded
    parent = [h["heldout"]["leaves"][HAIKU]["ref_nll"]["parent"] for h in (first, second)]
    assert parent[0] == parent[1] is not None
    assert second["heldout_seeds"][HAIKU] == first["heldout_seeds"][HAIKU]  # the choice did not move
    prompts = "\n".join(asked)
    held = held_texts(repo, second)
    assert not [q for _, q, _ in held if q in prompts]
    for data_file in (second["datasets"]["new"], second["datasets"]["mix"]):
        text = rows_text(data_file)
        assert not [q for _, q, a in held if q in text and a in text], data_file


def test_the_heldout_gate_names_the_leaf_and_the_key():
    s = NightlySettings(base_model="x")
    result = {"leaves": {"a": {"ref_nll": {"delta": 0.5}}, "b": {"ref_nll": {"delta": -0.2}}},
              "drift": {"delta": 0.01}}
    ok, why = heldout_gate(s, result, ["a", "b"])
    assert not ok and "a (+0.500)" in why and "max_leaf_nll_rise" in why
    ok, why = heldout_gate(s, {**result, "drift": {"delta": 0.3}}, ["b"])
    assert not ok and "max_drift" in why
    ok, why = heldout_gate(s, result, ["b"])
    assert ok and "+0.200" in why
    ok, why = heldout_gate(NightlySettings(base_model="x", min_heldout_gain=0.3), result, ["b"])
    assert not ok and "min_heldout_gain" in why
