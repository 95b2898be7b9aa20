"""Prompts that declare their reply's JSON schema (issue 17, the prompt half): the schema is the format — the
request carries it (unless structured output is off), the parser reads that JSON, and a reply that fails it is a
counted drop. A prompt without a schema works as text, as before."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from labrador.trainer.sdg import Limits, generate_leaf
from labrador.trainer.sdg.prompting import PromptError, load_prompt
from labrador.trainer.teachers.replay import ReplayTeacher

ROOT = Path(__file__).resolve().parents[3]
BUILTIN = ROOT / "trainer" / "sdg" / "prompts"
FREEFORM = "compositional_skills/writing/freeform/haiku/qna.yaml"
QUESTIONS = {"type": "object", "additionalProperties": False, "required": ["questions"],
             "properties": {"questions": {"type": "array", "minItems": 1, "maxItems": 5,
                                          "items": {"type": "string", "minLength": 1, "maxLength": 300}}}}
SCORE = {"type": "object", "additionalProperties": False, "required": ["explanation", "score"],
         "properties": {"explanation": {"type": "string", "maxLength": 300},
                        "score": {"type": "integer", "minimum": 0, "maximum": 1}}}


def override(repo: Path, name: str, **changes) -> None:
    """``<repo>/sdg/prompts/NAME.yaml``: the built-in prompt (same system text) with ``changes``."""
    drop = changes.pop("drop", ())
    data = {k: v for k, v in yaml.safe_load((BUILTIN / f"{name}.yaml").read_text()).items() if k not in drop}
    folder = repo / "sdg" / "prompts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({**data, **changes}, sort_keys=False))


def structured_repo(tmp_path: Path) -> Path:
    override(tmp_path, "freeform_questions", schema=QUESTIONS,
             template="Write new tasks for: {{ leaf.task_description }}. Reply with JSON: {\"questions\": [...]}")
    override(tmp_path, "freeform_question_judge", schema=SCORE, drop=("parse",),
             template="Task: {{ question }}. Reply with JSON: {\"explanation\": \"...\", \"score\": 0 or 1}")
    return tmp_path


def rules(questions: list[str], verdict: str) -> dict[str, list[str]]:
    return {"freeform_questions": questions, "freeform_question_judge": [verdict],
            "freeform_answer": ["A quiet river / carries the moon downstream / frogs keep the count"],
            "freeform_pair_judge": [json.dumps({"explanation": "good", "score": 3})]}


def run(repo: Path, teacher: ReplayTeacher, limits: Limits | None = None):
    data = (ROOT / "taxonomy" / FREEFORM).read_bytes()
    return asyncio.run(generate_leaf(FREEFORM, data, teacher, None, taxonomy_repo=repo, limits=limits,
                                     seed=1))


def test_the_schema_is_the_format_end_to_end(tmp_path):
    repo = structured_repo(tmp_path)
    reply = json.dumps({"questions": ["Write a haiku about a heron at dusk.", "Write a haiku about frost."]})
    teacher = ReplayTeacher(rules=rules([reply], json.dumps({"explanation": "fits", "score": 1})))
    res = run(repo, teacher)
    assert res.status == "ok" and res.kept >= 1 and res.dropped.get("parse_error", 0) == 0
    asked = {teacher.classify(r): r for r in teacher.requests}
    assert json.loads(asked["freeform_questions"].schema) == {"name": "freeform_questions", "schema": QUESTIONS}
    assert json.loads(asked["freeform_question_judge"].schema)["schema"] == SCORE
    assert asked["freeform_answer"].schema == ""  # free text stays free
    off = ReplayTeacher(rules=rules([reply], json.dumps({"explanation": "fits", "score": 1})))
    res_off = run(repo, off, Limits(structured=False))
    assert res_off.kept == res.kept and all(r.schema == "" for r in off.requests)  # asked in words only
    assert res.structured == "schema" and res_off.structured == "words"  # per step, in the manifest too
    steps = {s["step"]: s["structured"] for s in res.steps}
    assert steps["1:generate:freeform_questions"] == "schema" and steps["4:generate:freeform_answer"] == ""
    assert res_off.key != res.key  # a different request: never answered from the other's cache


@pytest.mark.parametrize("reply, reason", [
    ("Sure! 1. Write a haiku about bees.", "parse_error"),  # prose
    ('{"questions": []}', "parse_error"),  # fails minItems
    ('{"questions": ["ok"], "extra": 1}', "parse_error"),  # extra key
    ('{"questions": [' + "[" * 50_000 + "]" * 50_000 + "]}", "parse_error"),  # nested past the parser
    ('{"questions": ["   "]}', "parse_error"),  # minLength is 1, but all blanks: the schema allows, we do not
])
def test_a_reply_that_fails_the_schema_is_a_counted_drop_never_a_crash(tmp_path, reply, reason):
    repo = structured_repo(tmp_path)
    teacher = ReplayTeacher(rules=rules([reply], json.dumps({"explanation": "", "score": 1})))
    res = run(repo, teacher)
    assert res.status == "ok" and res.kept == 0
    assert res.dropped.get(reason, 0) + res.dropped.get("empty", 0) >= 1


def test_a_judge_reply_outside_its_schema_is_unparseable(tmp_path):
    repo = structured_repo(tmp_path)
    questions = json.dumps({"questions": ["Write a haiku about a heron at dusk."]})
    for verdict in ('{"explanation": "x", "score": 7}', "[Score] 1 [End]", '{"score": 1}'):
        res = run(repo, ReplayTeacher(rules=rules([questions], verdict)))
        assert res.kept == 0 and res.dropped.get("judge_unparseable", 0) >= 1, verdict


@pytest.mark.parametrize("changes, words", [
    ({"schema": QUESTIONS, "parse": {"format": "score", "range": [0, 1]}, "threshold": 1}, "not both"),
    ({"schema": {"type": "object", "properties": {"a": {"type": "string"}}}}, "one required array"),
    ({"schema": {"type": "nonsense"}}, "not a JSON schema"),
])
def test_a_bad_schema_is_refused_when_the_prompt_loads(tmp_path, changes, words):
    override(tmp_path, "freeform_questions", **changes)
    with pytest.raises(PromptError, match=words):
        load_prompt("freeform_questions", tmp_path / "sdg" / "prompts")


def test_a_judge_schema_needs_an_integer_score(tmp_path):
    override(tmp_path, "freeform_question_judge", drop=("parse",),
             schema={"type": "object", "required": ["verdict"], "properties": {"verdict": {"type": "string"}}})
    with pytest.raises(PromptError, match="integer `score`"):
        load_prompt("freeform_question_judge", tmp_path / "sdg" / "prompts")


def test_a_reply_cut_off_mid_json_is_counted_as_truncated(tmp_path):
    from labrador.trainer.sdg.parsing import json_cut_short

    assert json_cut_short('{"questions": ["one", "tw') and json_cut_short('{"a": {"b": [1, 2')
    assert not json_cut_short('{"questions": ["a } ] {"]}') and not json_cut_short("Sure, here: [1]")
    repo = structured_repo(tmp_path)
    cut = '{"questions": ["Write a haiku about a heron at dusk.", "Write a ha'
    res = run(repo, ReplayTeacher(rules=rules([cut], '{"explanation": "fits", "sco')))
    assert res.dropped.get("truncated", 0) >= 1 and res.dropped.get("parse_error", 0) == 0
    whole = json.dumps({"questions": ["Write a haiku about a heron at dusk."]})
    res = run(repo, ReplayTeacher(rules=rules([whole], '{"explanation": "fits", "sco')))
    assert res.dropped.get("truncated", 0) >= 1 and res.dropped.get("judge_unparseable", 0) == 0


def test_every_builtin_parsed_prompt_declares_its_schema_and_asks_for_that_json():
    from labrador.trainer.sdg.prompting import BUILTIN_DIR

    parsed = {"freeform_questions", "grounded_questions", "grounded_contexts", "knowledge_qa"}
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        prompt = load_prompt(path.stem)
        if prompt.threshold is None and path.stem not in parsed:
            assert prompt.schema is None, path.stem  # answers stay free text
            continue
        assert prompt.schema is not None and prompt.parse is None, path.stem
        keys = list(prompt.schema["properties"])
        assert all(f'"{k}"' in prompt.template for k in keys), path.stem  # the words ask for the same JSON
        if prompt.threshold is not None:
            assert keys == ["explanation", "score"] and prompt.schema["properties"]["explanation"]["maxLength"]


def test_a_generator_asked_for_num_items_gets_at_most_num():
    prompt = load_prompt("freeform_questions")
    capped = json.loads(prompt.request_schema({"num": 3}))["schema"]["properties"]["questions"]
    assert capped["maxItems"] == 3 and "maxItems" not in prompt.schema["properties"]["questions"]
    assert prompt.request_schema({"num": 3}) != prompt.request_schema({"num": 4})  # a different request key


def test_an_override_without_a_schema_still_works_as_text(tmp_path):
    """A taxonomy's own prompts written before schemas: tagged text, read by the pipeline's parse: and the
    judge's parse:, and no schema is sent."""
    override(tmp_path, "freeform_questions", drop=("schema",),
             template="Write tasks for {{ leaf.task_description }} as [Question] ... [End] blocks.")
    override(tmp_path, "freeform_question_judge", drop=("schema",), parse={"format": "score", "range": [0, 1]},
             template="Task: {{ question }}. Give [Score] 0 or 1 [End].")
    teacher = ReplayTeacher(rules={
        "freeform_questions": ["[Question]\n1. Write a haiku about a heron at dusk.\n[End]"],
        "freeform_question_judge": ["Fits.\n[Score]\n1\n[End]"],
        "freeform_answer": ["A quiet river / carries the moon downstream / frogs keep the count"],
        "freeform_pair_judge": [json.dumps({"explanation": "good", "score": 3})]})
    res = run(tmp_path, teacher)
    assert res.status == "ok" and res.kept >= 1 and not res.dropped.get("parse_error")
    asked = {teacher.classify(r): r for r in teacher.requests}
    assert asked["freeform_questions"].schema == "" and asked["freeform_question_judge"].schema == ""
    assert res.samples[0]["messages"][1]["content"] == "Write a haiku about a heron at dusk."
