"""Pure parts of SDG: parsers, judges, chunking, near-dup, prompt/pipeline files, checkpoints, replay."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from labrador.trainer.sdg.checkpoint import CheckpointStore, read_records
from labrador.trainer.sdg.chunking import chunk_markdown, sections
from labrador.trainer.sdg.near_dup import NearDuplicates, normalize
from labrador.trainer.sdg.parsing import PARSERS, parse_score, parse_yes_no
from labrador.trainer.sdg.pipeline import parse_pipeline
from labrador.trainer.sdg.prompting import Prompt, PromptError, load_prompt
from labrador.trainer.teachers.base import Request, TeacherError
from labrador.trainer.teachers.replay import ReplayTeacher

ROOT = Path(__file__).resolve().parents[3]
WORDS = ReplayTeacher(rules={"*": ["x"]}).count_tokens


def parse(name: str, text: str):
    out = PARSERS[name].parse(text)
    return out.items, dict(out.errors)


# --- completions -------------------------------------------------------------------------------

def test_tagged_questions_strip_numbering_and_count_failures():
    text = ("Intro.\n[Question]\n1. First?\n[End]\n[QUESTION] 2) Second?\n[END]\n"
            "[Question]\n3.\n[End]\n[Question]\n4. cut")
    items, errors = parse("tagged_questions", text)
    assert items == ["First?", "Second?"]
    assert errors == {"empty": 1, "parse_error": 1}  # "3." is empty, "4. cut" has no [End] (truncated)


@pytest.mark.parametrize("text, errors", [
    ("1. What? 2. Why?", {}),  # no tags at all: a short one-paragraph reply is one item (small teachers)
    ("", {"empty": 1}),
    ("   \n", {"empty": 1}),
    ("[Question][Question] nested [End]", {"missing_end": 1, "empty": 1}),
])
def test_tagged_questions_malformed(text, errors):
    items, got = parse("tagged_questions", text)
    assert got == errors
    assert items == (["nested"] if "nested" in text else ["What? 2. Why?"] if "What" in text else [])


def test_untagged_replies_of_small_teachers():
    assert parse("tagged_questions", "Write a haiku about the sea.") == (["Write a haiku about the sea."], {})
    assert parse("tagged_questions", "1. First task\n2. Second task\n") == (["First task", "Second task"], {})
    long = "\n\n".join(["A rambling reply."] * 3)
    assert parse("tagged_questions", long) == ([], {"empty": 1})


def test_tagged_qa_pairs():
    text = ("[Question] Q1? [Answer] A1. [End]\n[Question] Q2? no answer tag [End]\n"
            "[Question] Q3? [Answer] [End]\n[Question] Q4? [Answer] A4 [End]")
    items, errors = parse("tagged_qa", text)
    assert items == [{"question": "Q1?", "answer": "A1."}, {"question": "Q4?", "answer": "A4"}]
    assert errors == {"parse_error": 1, "empty": 1}


def test_text_parser():
    assert parse("text", "  an answer \n") == (["an answer"], {})
    assert parse("text", " \n ") == ([], {"empty": 1})


@pytest.mark.parametrize("text, score", [
    ("[Score] 2 [End]", 2), ("Reasoning... it mentions [Score] once.\n[Score]\n3\n[End]", 3), ("2", 2),
    ("2.", 2), (" 1 \n", 1), ("N/A", None), ("", None), ("[Score] 5 [End]", None),
    ("[Score] two [End]", None), ("[Score]\n[End]", None),
    # prose from a small teacher: the one in-range number it holds, never a pick among several
    ("I think 2", 2), ("The pair deserves a score of 3 out of 3.", 3), ("Between 1 and 3, I say 2", None),
    ("It has 7 lines", None), ("version 2.5 of it", None),
])
def test_score_judge_never_guesses(text, score):
    assert parse_score(text, 1, 3) == score


@pytest.mark.parametrize("text, verdict", [
    ("YES", 1), ("no", 0), ("Supported.\n[Verdict]\nYES\n[End]", 1), ("[Verdict] No. [End]", 0),
    ("Probably", None), ("", None), ("YES and NO", None),
    ("Yes, the answer is supported by the passage.", 1), ("No - it invents a date.", 0), ("yes or no?", None),
])
def test_yes_no_judge(text, verdict):
    assert parse_yes_no(text) == verdict


# --- chunking ----------------------------------------------------------------------------------

def test_sections_split_at_headings_not_in_code():
    md = "---\ntitle: x\n---\n# A\ntext a\n```\n# not a heading\n```\n## B\ntext b\n"
    assert sections(md) == ["# A\ntext a\n```\n# not a heading\n```", "## B\ntext b"]


def test_chunks_respect_budget_and_keep_all_words():
    text = (ROOT / "documents/knowledge/history/printing_press/gutenberg_and_movable_type.md").read_text()
    for size in (60, 200, 500):
        chunks = chunk_markdown(text, size, WORDS)
        assert all(0 < WORDS(c) <= size for c in chunks)
        assert " ".join(" ".join(chunks).split()) == " ".join(text.split())
    assert len(chunk_markdown(text, 60, WORDS)) > len(chunk_markdown(text, 500, WORDS))


def test_small_sections_are_merged_and_headings_start_chunks():
    md = "# One\nalpha beta\n\n# Two\ngamma delta\n\n# Three\n" + "word " * 30
    chunks = chunk_markdown(md, 20, WORDS)
    assert chunks[0] == "# One\nalpha beta\n\n# Two\ngamma delta"
    assert chunks[1].startswith("# Three")


# --- dedup -------------------------------------------------------------------------------------

def test_dedup_exact_after_normalisation_and_near():
    d = NearDuplicates(threshold=0.7)
    assert not d.is_duplicate("Write a haiku about the first snow of winter in the mountains.")
    assert d.is_duplicate("  write a HAIKU about the first snow of winter in the mountains!! ")  # exact
    assert d.is_duplicate("Write a haiku about the first snow of winter in the hills.")  # near
    assert not d.is_duplicate("Explain how a refrigerator keeps food cold.")
    assert normalize("Héllo,   World!") == "héllo world"


def test_dedup_threshold_is_configurable():
    a, b = "Write a haiku about the first snow of winter in the mountains.", "Write a haiku about snow."
    strict, loose = NearDuplicates(threshold=0.95), NearDuplicates(threshold=0.3)
    strict.is_duplicate(a)
    loose.is_duplicate(a)
    assert not strict.is_duplicate(b) and loose.is_duplicate(b)
    with pytest.raises(ValueError):
        NearDuplicates(threshold=0)


def test_dedup_group_by_compares_questions_within_one_context_only():
    from labrador.trainer.sdg.steps.dedup import _duplicates

    context = "| city | population |\n" + "\n".join(f"| town number {i} | {i * 1000} |" for i in range(40))
    items = [(context, "Which town is largest?"), (context, "List the towns above 10,000 people."),
             (context, "Which town is largest?"), ("another table", "Which town is largest?")]
    assert _duplicates(items, 0.7, 128, 5) == [False, False, True, False]
    joined = [("", f"{c}\n{q}") for c, q in items[:2]]  # the old way: a long shared context swamps the question
    assert _duplicates(joined, 0.7, 128, 5) == [False, True]


# --- prompts and pipelines ---------------------------------------------------------------------

def test_builtin_prompts_load_and_judges_have_thresholds():
    for path in sorted((ROOT / "trainer/sdg/prompts").glob("*.yaml")):
        p = load_prompt(path.stem)
        assert p.version >= 1 and p.system and p.template
        assert (p.threshold is not None) == p.is_judge


def test_template_sandbox_and_strict_undefined():
    evil = Prompt("x", 1, "s", "{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(SecurityError):
        evil.render({})
    for bomb in ("{{ 'a' * 10**9 }}", "{{ 10 ** 100000 }}", "{{ [1] * 100000000 }}",
                 "{% for i in range(100) %}{{ 'x' * 20000 }}{% endfor %}", "{{ leaf.seeds.append(1) }}"):
        with pytest.raises(SecurityError):
            Prompt("x", 1, "s", bomb).render({"leaf": {"seeds": []}})
    with pytest.raises(UndefinedError):
        Prompt("x", 1, "s", "{{ missing }}").render({})
    data = Prompt("x", 1, "s", "Q: {{ q }}").render({"q": "{{ 7*7 }} {% for i in x %}"})
    assert data == "Q: {{ 7*7 }} {% for i in x %}"


def test_override_prompt_is_validated(tmp_path):
    head = "version: 1\nsystem: s\ntemplate: t\n"
    (tmp_path / "freeform_answer.yaml").write_text("name: freeform_answer\n" + head + "bogus: 1\n")
    with pytest.raises(PromptError, match="bogus"):
        load_prompt("freeform_answer", tmp_path)
    (tmp_path / "freeform_answer.yaml").write_text("name: other\n" + head)
    with pytest.raises(PromptError, match="does not match"):
        load_prompt("freeform_answer", tmp_path)
    (tmp_path / "x_judge.yaml").write_text("name: x_judge\n" + head + "parse: {format: score}\n")
    with pytest.raises(PromptError, match="threshold"):
        load_prompt("x_judge", tmp_path)
    with pytest.raises(PromptError):
        load_prompt("../etc/passwd", tmp_path)


@pytest.mark.parametrize("steps, match", [
    ([{"type": "nope"}, {"type": "format", "user": "u", "assistant": "a"}], "needs a type"),
    ([{"type": "seeds"}], "format step"),
    ([{"type": "format", "user": "u", "assistant": "a"}, {"type": "seeds"}], "format step"),
    ([{"type": "judge"}, {"type": "format", "user": "u", "assistant": "a"}], "missing"),
    ([{"type": "seeds", "colour": 1}, {"type": "format", "user": "u", "assistant": "a"}], "unknown"),
])
def test_pipeline_validation(steps, match):
    with pytest.raises(PromptError, match=match):
        parse_pipeline({"name": "p", "version": 1, "steps": steps})


# --- checkpoints and the replay teacher --------------------------------------------------------

def test_checkpoint_tolerates_torn_last_line(tmp_path):
    path = tmp_path / "c.jsonl"
    store = CheckpointStore(path)
    store.put("a", ["1"])
    store.put("b", ["2", "3"])
    store.close()
    with open(path, "ab") as fh:
        fh.write(b'{"key": "c", "texts": ["tor')
    again = CheckpointStore(path)
    assert again.records == {"a": ["1"], "b": ["2", "3"]} and again.loaded == 2
    again.put("d", ["4"])
    again.close()
    records, _ = read_records(path)
    assert records == {"a": ["1"], "b": ["2", "3"], "d": ["4"]}
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_replay_teacher_records_rules_and_failures(tmp_path):
    req = Request(messages=(("user", "hello"),), n=2, seed=1)
    rec = tmp_path / "r.jsonl"
    rec.write_text(json.dumps({"key": req.key(), "texts": ["a", "b"]}) + "\n"
                   + json.dumps({"prompt": "*", "responses": ["x", "y", "z"]}) + "\n")
    t = ReplayTeacher.from_file(rec, classify=lambda r: None)
    assert asyncio.run(t.complete(req)) == ["a", "b"]
    other = Request(messages=(("user", "other"),), n=4)
    texts = asyncio.run(t.complete(other))
    assert len(texts) == 4 and set(texts) <= {"x", "y", "z"} and texts == asyncio.run(t.complete(other))
    assert t.calls[req.key()] == 1 and t.calls[other.key()] == 2
    with pytest.raises(TeacherError):  # a recording with the wrong number of texts
        asyncio.run(ReplayTeacher({req.key(): ["only one"]}, classify=lambda r: None).complete(req))
    with pytest.raises(TeacherError):
        asyncio.run(ReplayTeacher(classify=lambda r: None).complete(req))
    with pytest.raises(TeacherError):
        asyncio.run(ReplayTeacher(rules={"*": ["x"]}, fail_on=["hel"], classify=lambda r: None).complete(req))
    killer = ReplayTeacher(rules={"*": ["x"]}, fail_after=1, classify=lambda r: None)
    asyncio.run(killer.complete(req))
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(killer.complete(other))
    assert killer.calls == {req.key(): 1}


def test_a_prompt_file_bounds_n_and_a_pipeline_bounds_its_numbers(tmp_path):
    """Issue 29.6: `n: 1099511627776` (one request per sample when a server refuses n) and a step's
    `num_perm: 10**9` are refused by the schema, naming the key."""
    import yaml

    from labrador.trainer.sdg.pipeline import parse_pipeline
    from labrador.trainer.sdg.prompting import BUILTIN_DIR, PromptError, load_prompt

    raw = yaml.safe_load((BUILTIN_DIR / "freeform_questions.yaml").read_text())
    (tmp_path / "freeform_questions.yaml").write_text(yaml.safe_dump({**raw, "n": 1099511627776}))
    with pytest.raises(PromptError, match="n: must be at most 128"):
        load_prompt("freeform_questions", tmp_path)
    steps = [{"type": "seeds"}, {"type": "dedup", "field": "q", "num_perm": 10**9},
             {"type": "format", "user": "u", "assistant": "a"}]
    with pytest.raises(PromptError, match=r"steps\[1\]\.num_perm.*between 16 and 1024"):
        parse_pipeline({"name": "p", "steps": steps})
    steps[1]["num_perm"] = 64
    assert parse_pipeline({"name": "p", "steps": steps}).steps[1]["num_perm"] == 64
