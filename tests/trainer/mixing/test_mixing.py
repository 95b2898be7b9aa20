"""Mixing recipes: phases by path globs, per-leaf caps, ratios, replay of earlier phases and datasets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from labrador.trainer.mixing import (
    DEFAULT_RECIPE,
    RecipeError,
    glob_match,
    load_recipe,
    mix,
    parse_recipe,
    plan,
    scale,
    write_mix,
)
from labrador.trainer.mixing.core import _rng


def rows(leaf: str, n: int) -> list[dict]:
    return [{"leaf": leaf, "i": i, "messages": [{"role": "user", "content": f"{leaf} {i}"}]} for i in range(n)]


SAMPLES = {
    "knowledge/history/press": rows("knowledge/history/press", 12),
    "knowledge/science/stars": rows("knowledge/science/stars", 8),
    "foundational_skills/math/units": rows("foundational_skills/math/units", 50),
    "foundational_skills/logic/syllogisms": rows("foundational_skills/logic/syllogisms", 10),
    "compositional_skills/writing/haiku": rows("compositional_skills/writing/haiku", 20),
    "compositional_skills/grounded/tables": rows("compositional_skills/grounded/tables", 6),
}


def recipe(phases: list) -> object:
    return parse_recipe({"version": 1, "phases": phases})


def keys(phase_rows: list[dict]) -> Counter:
    return Counter(r["leaf"] for r in phase_rows)


def test_default_recipe_is_lab_two_phases_with_replay() -> None:
    r = load_recipe()
    assert r.source == str(DEFAULT_RECIPE) and len(r.sha256) == 64
    result = plan(r, SAMPLES, seed=0)
    p1, p2 = result.phases["phase1"], result.phases["phase2"]
    assert keys(p1) == {"knowledge/history/press": 12, "knowledge/science/stars": 8,
                        "foundational_skills/math/units": 50, "foundational_skills/logic/syllogisms": 10}
    # phase 2: its own compositional skills + all phase-1 knowledge + foundational skills capped at 30/leaf
    assert keys(p2) == {"compositional_skills/writing/haiku": 20, "compositional_skills/grounded/tables": 6,
                        "knowledge/history/press": 12, "knowledge/science/stars": 8,
                        "foundational_skills/math/units": 30, "foundational_skills/logic/syllogisms": 10}
    m = result.manifest["phases"]["phase2"]
    assert m["own"] == 26 and m["replayed"] == 60 and m["replay"] == {"phase:phase1": 60}
    assert m["replay_leaves"]["foundational_skills/math/units"] == 30
    assert result.manifest["unassigned"] == []


def test_caps_are_random_but_keep_order_and_never_duplicate() -> None:
    r = recipe([{"name": "p", "groups": [{"name": "all", "include": ["**"], "max_per_leaf": 5}]}])
    out = mix(r, SAMPLES, seed=3)["p"]
    per_leaf = keys(out)
    assert set(per_leaf.values()) == {5}
    units = [row["i"] for row in out if row["leaf"] == "foundational_skills/math/units"]
    assert len(set(units)) == 5 and units != [0, 1, 2, 3, 4]  # a random subset, not the first five


@pytest.mark.parametrize("ratio, expected", [(0.5, 10), (1.0, 20), (0.0, 0), (2.5, 50)])
def test_ratio_subsamples_or_upsamples(ratio: float, expected: int) -> None:
    r = recipe([{"name": "p", "groups": [{"name": "g", "include": ["compositional_skills/writing"], "ratio": ratio}]}])
    out = mix(r, SAMPLES)["p"]
    assert len(out) == expected
    counts = Counter(row["i"] for row in out)
    if ratio >= 1:  # every row at least floor(ratio) times, none more than ceil(ratio)
        assert min(counts.values()) == int(ratio) and max(counts.values()) <= int(ratio) + 1
    else:
        assert max(counts.values(), default=1) == 1


def test_scale_rounds_and_is_seeded() -> None:
    items = list(range(7))
    assert len(scale(items, 0.5, _rng(1))) == 4  # round(3.5) up, as documented
    assert scale(items, 0.5, _rng(1)) == scale(items, 0.5, _rng(1))
    assert scale([], 3.0, _rng(1)) == []


def test_first_matching_group_wins_and_unassigned_are_reported() -> None:
    r = recipe([
        {"name": "a", "groups": [{"name": "stars", "include": ["knowledge/science/*"]}]},
        {"name": "b", "groups": [{"name": "rest", "include": ["knowledge", "compositional_skills"],
                                  "exclude": ["**/tables"]}]},
    ])
    result = plan(r, SAMPLES)
    assert keys(result.phases["a"]) == {"knowledge/science/stars": 8}
    assert set(keys(result.phases["b"])) == {"knowledge/history/press", "compositional_skills/writing/haiku"}
    assert result.manifest["unassigned"] == ["compositional_skills/grounded/tables",
                                             "foundational_skills/logic/syllogisms", "foundational_skills/math/units"]


def test_replay_fraction_of_an_earlier_phase() -> None:
    r = recipe([
        {"name": "p1", "groups": [{"name": "k", "include": ["knowledge"]}]},
        {"name": "p2", "groups": [{"name": "s", "include": ["compositional_skills"]}],
         "replay": [{"phase": "p1", "fraction": 0.25}]},
    ])
    result = plan(r, SAMPLES, seed=9)
    p2 = result.manifest["phases"]["p2"]
    assert p2["replay"] == {"phase:p1": 5} and p2["own"] == 26 and p2["rows"] == 31  # round(0.25 * 20)
    replayed = [row for row in result.phases["p2"] if row["leaf"].startswith("knowledge/")]
    p1_ids = {id(row) for row in result.phases["p1"]}
    assert len(replayed) == 5 and all(id(row) in p1_ids for row in replayed)


def test_precomputed_replay_dataset(tmp_path: Path) -> None:
    old = [{"messages": [{"role": "user", "content": f"old {i}"}], "id": i} for i in range(40)]
    (tmp_path / "old.jsonl").write_text("".join(json.dumps(o) + "\n" for o in old))
    doc = {"version": 1, "phases": [
        {"name": "p1", "groups": [{"name": "all", "include": ["**"]}],
         "replay": [{"dataset": "old.jsonl", "fraction": 0.5},
                    {"dataset": "missing.jsonl", "fraction": 1.0, "optional": True}]}]}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(doc))
    r = load_recipe(path)
    write_mix(tmp_path / "out", r, SAMPLES, seed=1)
    manifest = json.loads((tmp_path / "out" / "mix_manifest.json").read_text())
    assert manifest["phases"]["p1"]["replay"] == {"dataset:old.jsonl": 20}
    assert manifest["optional_datasets_missing"] == ["missing.jsonl"]
    assert manifest["phases"]["p1"]["missing_replay"] == ["dataset:missing.jsonl"]
    lines = (tmp_path / "out" / "p1.jsonl").read_text().splitlines()
    assert len(lines) == sum(len(v) for v in SAMPLES.values()) + 20 == manifest["files"]["p1"]["rows"]
    assert sum("old " in line for line in lines) == 20
    assert not list((tmp_path / "out").glob(".*.tmp"))  # atomic writes leave no temp files
    doc["phases"][0]["replay"][1]["optional"] = False
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(RecipeError, match="missing.jsonl does not exist"):
        write_mix(tmp_path / "out2", load_recipe(path), SAMPLES)


def test_mixing_is_deterministic_and_seed_sensitive(tmp_path: Path) -> None:
    r = load_recipe()
    shuffled = dict(reversed(list(SAMPLES.items())))  # input order must not matter
    a = write_mix(tmp_path / "a", r, SAMPLES, seed=5)
    b = write_mix(tmp_path / "b", r, shuffled, seed=5)
    for name in ("phase1", "phase2"):
        assert (tmp_path / "a" / f"{name}.jsonl").read_bytes() == (tmp_path / "b" / f"{name}.jsonl").read_bytes()
    assert a.manifest["files"] == b.manifest["files"]
    c = mix(r, SAMPLES, seed=6)
    assert [row["i"] for row in c["phase2"]] != [row["i"] for row in a.phases["phase2"]]


def test_glob_semantics() -> None:
    leaf = "compositional_skills/writing/freeform/haiku"
    assert glob_match("compositional_skills", leaf) and glob_match("compositional_skills/writing", leaf)
    assert glob_match("compositional_skills/*/freeform", leaf) and glob_match("**/haiku", leaf)
    assert glob_match("**", leaf) and glob_match("compositional_skills/**/haiku", leaf)
    assert not glob_match("compositional", leaf) and not glob_match("*/haiku", leaf)
    assert not glob_match("knowledge", leaf) and not glob_match("compositional_skills/writing/free", leaf)


@pytest.mark.parametrize("doc, message", [
    ({"phases": []}, "version: 1"),
    ({"version": 1, "phases": []}, "non-empty list"),
    ({"version": 1, "phases": [{"name": "../x", "groups": []}]}, "unique name"),
    ({"version": 1, "phases": [{"name": "p", "groups": [{"name": "g"}]}]}, "include: required"),
    ({"version": 1, "phases": [{"name": "p", "groups": [{"name": "g", "include": ["k"], "ratio": -1}]}]},
     "ratio: must be 0 or more"),
    ({"version": 1, "phases": [{"name": "p", "groups": [{"name": "g", "include": ["k"], "cap": 3}]}]},
     "unknown key"),
    ({"version": 1, "phases": [{"name": "p", "groups": [], "replay": [{"phase": "p"}]}]}, "not an earlier phase"),
    ({"version": 1, "phases": [{"name": "p", "groups": [], "replay": [{"fraction": 1}]}]}, "exactly one of"),
    ({"version": 1, "phases": [{"name": "p", "groups": [{"name": "g", "include": ["k"], "max_per_leaf": 1.5}]}]},
     "whole number"),
])
def test_bad_recipes_name_the_problem(doc: dict, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        parse_recipe(doc, "r.yaml")


def test_unreadable_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="cannot read recipe"):
        load_recipe(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("version: [1\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(tmp_path / "bad.yaml")


@pytest.mark.parametrize(("line", "what"), [("{oops", "not a JSON object ("), ("[1, 2]", "not a JSON object but list")])
def test_a_bad_line_in_a_dataset_names_file_and_line(tmp_path: Path, line: str, what: str) -> None:
    """The one JSONL reader (trainer/jsonl.py) behind replay sets, mixes and a night's data."""
    from labrador.trainer.mixing import read_jsonl

    path = tmp_path / "replay.jsonl"
    path.write_text('{"messages": []}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(RecipeError) as exc:
        read_jsonl(path)
    assert f"{path}:3: {what}" in str(exc.value)
