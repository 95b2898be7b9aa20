"""Crash safety and incrementality: kill/resume, the leaf cache, prompt overrides, partial leaves."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest
import yaml

from labrador.trainer.sdg import LeafInput, generate, generate_leaf
from labrador.trainer.sdg.prompting import BUILTIN_DIR
from labrador.trainer.teachers.replay import ReplayTeacher, prompt_classifier

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "sdg"
FREEFORM = "compositional_skills/writing/freeform/haiku/qna.yaml"
GROUNDED = "compositional_skills/grounded/extraction/table_to_bullets/qna.yaml"
KNOWLEDGE = "knowledge/history/printing_press/qna.yaml"
RULES: dict[str, list[str]] = {}
for _kind in ("freeform", "grounded", "knowledge"):
    RULES.update(json.loads((FIXTURES / f"{_kind}.json").read_text())["rules"])


def leaf_input(rel: str) -> LeafInput:
    data = (ROOT / "taxonomy" / rel).read_bytes()
    docs = None
    if rel.startswith("knowledge/"):
        docs = [(p, (ROOT / p).read_bytes()) for p in yaml.safe_load(data)["document"]["patterns"]]
    return LeafInput(rel, data, docs)


LEAVES = [leaf_input(FREEFORM), leaf_input(GROUNDED), leaf_input(KNOWLEDGE)]


def outputs(results) -> list[bytes]:
    return [(r.folder / "samples.jsonl").read_bytes() for r in results]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of three leaves (one per pipeline) at once."""
    t = ReplayTeacher(rules=RULES)
    results = asyncio.run(generate(LEAVES, t, tmp_path_factory.mktemp("ref")))
    assert [r.status for r in results] == ["ok"] * 3
    return t, outputs(results)


@pytest.mark.parametrize("trial", range(4))
def test_resume_after_kill_at_random_point(tmp_path, reference, trial):
    ref_teacher, ref_out = reference
    rng_seed = random.randrange(2**32)
    k = random.Random(rng_seed).randint(1, ref_teacher.started - 1)
    killed = ReplayTeacher(rules=RULES, fail_after=k)
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(generate(LEAVES, killed, tmp_path))
    checkpoints = list((tmp_path / ".checkpoints").glob("*.jsonl"))
    assert checkpoints, f"nothing checkpointed (rng seed {rng_seed}, k={k})"
    if trial % 2:  # killed in the middle of a write, too
        with open(checkpoints[0], "ab") as fh:
            fh.write(b'{"key": "0123", "texts": ["half a li')
    resumed = ReplayTeacher(rules=RULES)
    results = asyncio.run(generate(LEAVES, resumed, tmp_path))
    # a leaf that finished before the kill is complete on disk: served from the cache, byte-identical
    assert {r.status for r in results} <= {"ok", "cached"} and "ok" in {r.status for r in results}
    assert outputs(results) == ref_out, f"rng seed {rng_seed}, k={k}"
    both = killed.calls + resumed.calls
    assert max(both.values()) == 1, f"a finished request was sent again (rng seed {rng_seed}, k={k})"
    assert both == ref_teacher.calls
    assert not list((tmp_path / ".checkpoints").glob("*.jsonl"))


def test_unchanged_leaf_sends_no_request(tmp_path, reference):
    first = asyncio.run(generate(LEAVES, ReplayTeacher(rules=RULES), tmp_path))
    again = ReplayTeacher(rules=RULES)
    second = asyncio.run(generate(LEAVES, again, tmp_path))
    assert again.started == 0 and [r.status for r in second] == ["cached"] * 3
    assert [r.samples for r in second] == [r.samples for r in first]
    assert [(r.kept, r.generated, r.dropped) for r in second] == [(r.kept, r.generated, r.dropped) for r in first]
    # a different teacher identity is a different key: regenerated
    other = ReplayTeacher(rules=RULES, name="replay-2")
    third = asyncio.run(generate(LEAVES[:1], other, tmp_path))
    assert third[0].status == "ok" and other.started > 0 and third[0].key != first[0].key


def test_changed_leaf_is_regenerated_and_old_output_kept(tmp_path):
    inp = leaf_input(FREEFORM)
    first = asyncio.run(generate_leaf(inp.relpath, inp.data, ReplayTeacher(rules=RULES), tmp_path))
    edited = inp.data.replace(b"first snow of winter", b"first snow of the winter")
    t = ReplayTeacher(rules=RULES)
    second = asyncio.run(generate_leaf(inp.relpath, edited, t, tmp_path))
    assert second.status == "ok" and t.started > 0 and second.key != first.key
    assert first.folder.parent == second.folder.parent and (first.folder / "manifest.json").exists()


def test_prompt_override_changes_key_and_output(tmp_path):
    repo = tmp_path / "taxonomy-repo"
    override = repo / "sdg" / "prompts"
    override.mkdir(parents=True)
    spec = yaml.safe_load((BUILTIN_DIR / "freeform_answer.yaml").read_text())
    spec.update(version=2, system="You answer in the voice of a cheerful ship's captain.",
                template="Answer like a sailor:\n\n{{ question }}")
    (override / "freeform_answer.yaml").write_text(yaml.safe_dump(spec))
    inp = leaf_input(FREEFORM)
    base = asyncio.run(generate_leaf(inp.relpath, inp.data, ReplayTeacher(rules=RULES), tmp_path / "out"))
    t = ReplayTeacher(rules=RULES, classify=prompt_classifier(override))
    custom = asyncio.run(generate_leaf(inp.relpath, inp.data, t, tmp_path / "out", taxonomy_repo=repo))
    assert custom.status == "ok" and custom.key != base.key and custom.kept > 0
    assert (custom.folder / "samples.jsonl").read_bytes() != (base.folder / "samples.jsonl").read_bytes()
    assert all(s["prompt_versions"]["freeform_answer"] == 2 for s in custom.samples)
    sailor = [r for r in t.requests if r.messages[0][1] == spec["system"]]
    assert sailor and all(r.messages[1][1].startswith("Answer like a sailor:") for r in sailor)
    # a repo without overrides keeps the built-ins (and the cache)
    again = ReplayTeacher(rules=RULES)
    plain = asyncio.run(generate_leaf(inp.relpath, inp.data, again, tmp_path / "out", taxonomy_repo=tmp_path))
    assert plain.status == "cached" and plain.key == base.key and again.started == 0


def test_pipeline_override_from_taxonomy_repo(tmp_path):
    pipelines = tmp_path / "sdg" / "pipelines"
    pipelines.mkdir(parents=True)
    (pipelines / "freeform.yaml").write_text(
        "name: freeform-lite\nversion: 7\nsteps:\n  - {type: seeds}\n"
        "  - {type: generate, prompt: freeform_questions, parse: tagged_questions, into: question}\n"
        "  - {type: generate, prompt: freeform_answer, into: answer}\n"
        "  - {type: format, system: '', user: '{{ question }}', assistant: '{{ answer }}'}\n")
    inp = leaf_input(FREEFORM)
    res = asyncio.run(generate_leaf(inp.relpath, inp.data, ReplayTeacher(rules=RULES), tmp_path / "o",
                                    taxonomy_repo=tmp_path))
    assert res.status == "ok" and res.kept > 0
    assert all(s["pipeline"] == "freeform-lite@7" and s["judge_scores"] == {} for s in res.samples)
    assert all([m["role"] for m in s["messages"]] == ["user", "assistant"] for s in res.samples)
    (pipelines / "freeform.yaml").write_text("name: bad\nsteps:\n  - {type: seeds}\n")
    bad = asyncio.run(generate_leaf(inp.relpath, inp.data, ReplayTeacher(rules=RULES), tmp_path / "o",
                                    taxonomy_repo=tmp_path))
    assert bad.status == "failed" and "format step" in bad.error


def test_partial_leaf_is_not_cached_and_retries_only_what_failed(tmp_path, reference):
    _, ref_out = reference
    kept = [json.loads(line) for line in ref_out[0].splitlines()]
    assert len(kept) >= 2
    question = kept[0]["messages"][1]["content"]
    flaky = ReplayTeacher(rules=RULES, fail_on=[question])  # the server fails every request about it
    first = asyncio.run(generate(LEAVES[:1], flaky, tmp_path))[0]
    assert first.status == "partial" and first.kept == len(kept) - 1 and first.dropped["teacher_error"] == 1
    manifest = json.loads((first.folder / "manifest.json").read_text())
    assert manifest["complete"] is False and manifest["status"] == "partial"
    healthy = ReplayTeacher(rules=RULES)
    second = asyncio.run(generate(LEAVES[:1], healthy, tmp_path))[0]
    assert second.status == "ok" and second.folder == first.folder
    assert outputs([second]) == ref_out[:1]
    assert healthy.requests and all(question in r.messages[-1][1] for r in healthy.requests)
    assert max((flaky.calls + healthy.calls).values()) == 1
