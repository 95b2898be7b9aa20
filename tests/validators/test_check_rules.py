"""One focused test per check id: the id, the severity and the exact line:column the finding points at."""

from __future__ import annotations

from pathlib import Path

import pytest

from labrador.validators import Config, check_file
from labrador.validators.checks import REGISTRY
from labrador.validators.tree import check_tree

ROOT = Path(__file__).resolve().parents[2]
TAXONOMY = ROOT / "taxonomy"
REAL_LEAVES = sorted(TAXONOMY.rglob("qna.yaml"))

SKILL = "compositional_skills/writing/freeform/test_leaf/qna.yaml"
FOUNDATIONAL = "foundational_skills/reasoning/logic/test_leaf/qna.yaml"
KNOWLEDGE = "knowledge/science/test_leaf/qna.yaml"


# ---------------------------------------------------------------- builders and helpers


def skill(seeds: int = 5, version: int | None = 3, seed_text: str | None = None, head: str = "") -> str:
    out = "" if version is None else f"version: {version}\n"
    out += "created_by: tester\ntask_description: Answer short questions.\n" + head + "seed_examples:\n"
    out += seed_text if seed_text is not None else "".join(
        f"  - question: Question number {i}?\n    answer: Answer number {i}.\n" for i in range(seeds))
    return out


def knowledge(seeds: int = 5, qas: int = 3, head: str = "version: 3\n", context=None, qa=None) -> str:
    """A valid knowledge v3 leaf; ``context(i)`` and ``qa(i, j)`` override the generated text."""
    out = head + "created_by: tester\ndomain: science\ndocument_outline: An outline of the document.\nseed_examples:\n"
    for i in range(seeds):
        out += f"  - context: {context(i) if context else f'Context paragraph number {i}.'}\n"
        out += "    questions_and_answers:\n"
        for j in range(qas):
            q, a = qa(i, j) if qa else (f"Question {i}-{j}?", f"Answer {i}-{j}.")
            out += f"      - question: {q}\n        answer: {a}\n"
    out += ("document:\n  repo: https://github.com/labrador-ai/labrador\n"
            "  commit: \"0000000000000000000000000000000000000000\"\n  patterns:\n    - documents/a.md\n")
    return out


def check(text: str | bytes, path: str = SKILL, config: Config | None = None):
    return check_file(path, text.encode() if isinstance(text, str) else text, config)


def pos(text: str, needle: str, nth: int = 1, offset: int = 0) -> tuple[int, int]:
    """1-based line:column of the ``nth`` occurrence of ``needle`` (plus ``offset`` characters)."""
    at = -1
    for _ in range(nth):
        at = text.index(needle, at + 1)
    at += offset
    return text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1


def only(report, check_id: str):
    hits = [f for f in report.findings if f.check == check_id]
    assert len(hits) == 1, f"expected one {check_id} finding, got {report.findings}"
    return hits[0]


def at(f) -> tuple[int, int]:
    return f.line, f.column


def assert_severity(f) -> None:
    assert f.severity == REGISTRY[f.check].severity


def test_builders_are_valid():
    for text, path in ((skill(), SKILL), (skill(), FOUNDATIONAL), (knowledge(), KNOWLEDGE)):
        report = check(text, path)
        assert report.findings == [], report.findings


# ---------------------------------------------------------------- parser checks


def test_yaml_syntax_points_at_the_error():
    text = skill(head="").replace("task_description: Answer short questions.",
                                  "task_description: Do this: then that")
    report = check(text)
    f = only(report, "yaml-syntax")
    assert f.severity == "error"
    assert at(f) == pos(text, ": then", offset=0)
    assert "mapping values" in f.message
    assert f.hint
    assert report.data is None


def test_yaml_syntax_unclosed_flow_sequence():
    text = "version: 3\ncreated_by: [tester\n"
    f = only(check(text), "yaml-syntax")
    assert f.severity == "error" and f.line >= 2


def test_yaml_syntax_does_not_stop_the_run(tmp_path):
    good = tmp_path / "compositional_skills/writing/good"
    bad = tmp_path / "compositional_skills/writing/bad"
    late = tmp_path / "foundational_skills/reasoning/zz_late"
    for d in (good, bad, late):
        d.mkdir(parents=True)
        (d / "attribution.txt").write_text((TAXONOMY / "compositional_skills/writing/freeform/haiku/attribution.txt")
                                           .read_text())
    (good / "qna.yaml").write_text(skill())
    (bad / "qna.yaml").write_text("version: 3\ncreated_by: [x\n")
    (late / "qna.yaml").write_text(skill().replace("Answer number 4.", "yes"))
    reports = {r.path: r for r in check_tree(tmp_path, Config())}
    assert set(reports) == {f"{p.relative_to(tmp_path).as_posix()}/qna.yaml" for p in (good, bad, late)}
    assert [f.check for f in reports["compositional_skills/writing/bad/qna.yaml"].errors] == ["yaml-syntax"]
    assert reports["compositional_skills/writing/good/qna.yaml"].findings == []
    assert [f.check for f in reports["foundational_skills/reasoning/zz_late/qna.yaml"].errors] == ["truthy"]


def test_duplicate_key_points_at_second_key_and_names_first_line():
    text = skill().replace("created_by: tester\n", "created_by: tester\nversion: 3\n")
    f = only(check(text), "duplicate-key")
    assert f.severity == "error"
    assert at(f) == pos(text, "version", nth=2)
    assert "'version'" in f.message and "first at line 1" in f.message


def test_duplicate_key_in_nested_mapping():
    text = skill(seed_text="".join(f"  - question: q{i}\n    answer: a{i}\n" for i in range(4))
                 + "  - question: q4\n    answer: a4\n    question: again\n")
    f = only(check(text), "duplicate-key")
    assert at(f) == pos(text, "question: again")
    assert f"first at line {pos(text, 'question: q4')[0]}" in f.message


def test_tabs():
    text = skill().replace("answer: Answer number 2.", "answer: Answer\tnumber 2.")
    f = only(check(text), "tabs")
    assert f.severity == "warning"
    assert at(f) == pos(text, "\t")


def test_trailing_spaces():
    text = skill().replace("Question number 1?\n", "Question number 1?   \n")
    f = only(check(text), "trailing-spaces")
    assert f.severity == "warning"
    assert at(f) == pos(text, "?   \n", offset=1)


def test_final_newline():
    text = skill().rstrip("\n")
    f = only(check(text), "final-newline")
    assert f.severity == "warning"
    last = text.split("\n")[-1]
    assert at(f) == (text.count("\n") + 1, len(last) + 1)
    assert check(text + "\n").findings == []


def test_truthy_is_an_error_with_a_quoting_hint_and_no_schema_duplicate():
    text = skill().replace("answer: Answer number 3.", "answer: yes")
    report = check(text)
    f = only(report, "truthy")
    assert f.severity == "error"
    assert at(f) == pos(text, "yes")
    assert "quot" in f.hint.lower() and '"yes"' in f.hint
    assert [g for g in report.findings if at(g) == at(f) and g is not f] == []
    assert report.errors == [f]


@pytest.mark.parametrize("word", ["no", "on", "off", "No", "YES", "Off"])
def test_truthy_words(word):
    text = skill().replace("answer: Answer number 0.", f"answer: {word}")
    f = only(check(text), "truthy")
    assert at(f) == pos(text, f"answer: {word}", offset=8)


def test_true_false_and_quoted_yes_are_not_truthy_findings():
    assert not [f for f in check(skill().replace("Answer number 0.", '"yes"')).findings]
    assert "truthy" not in {f.check for f in check(skill().replace("Answer number 0.", "true")).findings}


@pytest.mark.parametrize("text", ["", "   \n\n", "# only a comment\n# and another\n", "---\n", "\n"],
                         ids=["empty", "whitespace", "comments", "bare-document-marker", "newline"])
def test_empty_file(text):
    report = check(text)
    f = only(report, "empty-file")
    assert f.severity == "error"
    assert [g.check for g in report.errors] == ["empty-file"]


@pytest.mark.parametrize("text", ["- version: 3\n- created_by: x\n", "just some text\n", "42\n"])
def test_not_a_mapping(text):
    f = only(check(text), "not-a-mapping")
    assert f.severity == "error"
    assert at(f) == (1, 1)


def test_multiple_documents():
    text = skill() + "---\nversion: 3\n"
    f = only(check(text), "multiple-documents")
    assert f.severity == "error"
    assert at(f) == pos(text, "---")


def test_yaml_tag():
    text = skill().replace("answer: Answer number 1.", "answer: !!python/object/apply:os.system ['true']")
    f = only(check(text), "yaml-tag")
    assert f.severity == "error"
    assert at(f) == pos(text, "!!python")
    assert "python/object/apply" in f.message


@pytest.mark.parametrize("tagged", ["!!timestamp not-a-date", "!!bool maybe", "!!int x", "!!float x", "!!binary '!'",
                                    "!!map text", "!!seq text"])
def test_standard_tag_on_a_bad_value_never_raises(tagged):
    report = check(skill().replace("Answer number 1.", tagged))
    assert all(f.check in REGISTRY for f in report.findings)
    assert "truthy" not in {f.check for f in report.findings}  # an explicit tag is not an accidental boolean


def test_local_tag_is_refused():
    text = skill().replace("Answer number 1.", "!custom text")
    assert at(only(check(text), "yaml-tag")) == pos(text, "!custom")


# ---------------------------------------------------------------- version


@pytest.mark.parametrize("version", [1, 2])
def test_knowledge_v1_v2_are_unsupported(version):
    text = knowledge(head=f"version: {version}\n")
    report = check(text, KNOWLEDGE)
    f = only(report, "version")
    assert f.severity == "error"
    assert "minimum supported version is 3" in f.message
    assert at(f) == pos(text, str(version))
    assert report.errors == [f]


def test_knowledge_without_version_is_unsupported():
    f = only(check(knowledge(head=""), KNOWLEDGE), "version")
    assert "minimum supported version is 3" in f.message and "missing" in f.message


def test_quoted_version():
    text = skill().replace("version: 3", 'version: "3"')
    f = only(check(text), "version")
    assert at(f) == pos(text, '"3"')
    assert "whole number" in f.message and "without quotes" in f.hint


@pytest.mark.parametrize("path,text", [(SKILL, skill(version=4)), (KNOWLEDGE, knowledge(head="version: 4\n"))],
                         ids=["skill", "knowledge"])
def test_version_4_is_unsupported(path, text):
    f = only(check(text, path), "version")
    assert "unsupported version 4" in f.message
    assert at(f) == pos(text, "4")


@pytest.mark.parametrize("value", ["true", "3.0", "three", "[3]"])
def test_version_not_a_number(value):
    f = only(check(skill().replace("version: 3", f"version: {value}")), "version")
    assert at(f) == (1, 10)


# ---------------------------------------------------------------- schema


def test_missing_key_is_reported_at_the_mapping():
    text = skill().replace("created_by: tester\n", "")
    f = only(check(text), "schema")
    assert f.severity == "error"
    assert "required key 'created_by' is missing" in f.message
    assert at(f) == (1, 1)


def test_missing_key_in_a_seed_is_reported_at_the_seed():
    text = skill().replace("    answer: Answer number 2.\n", "")
    f = only(check(text), "schema")
    assert "seed_examples[2]" in f.message and "'answer'" in f.message
    assert at(f) == pos(text, "question: Question number 2")


def test_unknown_key_at_its_own_position_with_did_you_mean():
    text = skill().replace("created_by:", "creatd_by:")
    report = check(text)
    unknown = [f for f in report.findings if "unknown key" in f.message]
    assert len(unknown) == 1
    assert at(unknown[0]) == pos(text, "creatd_by")
    assert unknown[0].hint == "Did you mean 'created_by'?"


def test_unknown_nested_key_with_did_you_mean():
    text = skill().replace("    answer: Answer number 4.", "    anwser: Answer number 4.")
    unknown = [f for f in check(text).findings if "unknown key" in f.message]
    assert [at(f) for f in unknown] == [pos(text, "anwser")]
    assert "'answer'" in unknown[0].hint


def test_task_description_in_knowledge_v3():
    text = knowledge().replace("domain: science\n", "domain: science\ntask_description: nope\n")
    report = check(text, KNOWLEDGE)
    f = only(report, "schema")
    assert "unknown key 'task_description'" in f.message
    assert at(f) == pos(text, "task_description")
    assert "no task_description" in f.hint


def test_wrong_type():
    text = skill().replace("created_by: tester", "created_by: 42")
    f = only(check(text), "schema")
    assert f.message == "created_by: expected text, got the number 42"
    assert at(f) == pos(text, "42")
    assert "Quote" in f.hint


def test_list_where_text_expected():
    text = skill().replace("Answer number 1.", "[a, b]")
    f = only(check(text), "schema")
    assert "seed_examples[1].answer: expected text, got a list" == f.message
    assert at(f) == pos(text, "[a, b]")


def test_empty_string():
    text = skill().replace("task_description: Answer short questions.", 'task_description: ""')
    f = only(check(text), "schema")
    assert f.message == "task_description: must not be empty"
    assert at(f) == pos(text, '""')


def test_null_value():
    text = skill().replace("created_by: tester", "created_by:")
    f = only(check(text), "schema")
    assert "nothing (null)" in f.message


def test_min_items_message():
    text = skill(seeds=3)
    f = only(check(text), "schema")
    assert f.message == "seed_examples: needs at least 5 items, has 3"
    assert len(f.message) < 200
    assert at(f) == pos(text, "- question")
    assert "2 more" in f.hint


def test_min_items_questions_and_answers():
    text = knowledge(qas=2)
    report = check(text, KNOWLEDGE)
    msgs = [f.message for f in report.errors]
    assert msgs == [f"seed_examples[{i}].questions_and_answers: needs at least 3 items, has 2" for i in range(5)]
    assert all(len(m) < 200 for m in msgs)


def test_schema_messages_stay_short():
    text = skill().replace("created_by: tester", "created_by: {" + ", ".join(f"k{i}: {i}" for i in range(300)) + "}")
    for f in check(text).findings:
        assert len(f.message) < 200


def test_schema_findings_are_capped():
    text = skill(seed_text="".join(f"  - {i}\n" for i in range(1000)))
    report = check(text)
    assert 100 <= len(report.findings) <= 102
    assert report.findings[-1].message.startswith("more schema errors not shown")


# ---------------------------------------------------------------- duplicate seeds


def test_duplicate_seed_exact():
    text = skill().replace("Question number 3?", "Question number 1?")
    f = only(check(text), "duplicate-seed")
    assert f.severity == "error"
    assert at(f) == pos(text, "Question number 1?", nth=2)
    assert f"line {pos(text, 'Question number 1?')[0]}" in f.message


def test_duplicate_seed_ignores_case_and_spacing():
    text = skill().replace("Question number 3?", "'  QUESTION   number 1? '")
    f = only(check(text), "duplicate-seed")
    assert at(f) == pos(text, "'  QUESTION")


def test_skill_seeds_with_same_question_but_different_context_are_not_duplicates():
    seeds = "".join(f"  - context: Context {i}\n    question: Same question?\n    answer: A{i}\n" for i in range(5))
    assert check(skill(seed_text=seeds)).findings == []


def test_seeds_without_a_question_are_not_duplicates_of_each_other():
    report = check(skill(seed_text="  - answer: a\n" * 5))
    assert {f.check for f in report.findings} == {"schema"}


def test_knowledge_same_question_of_different_contexts_is_fine():
    """A generic question asked of different passages is legitimate (upstream's own valid test data does it)."""
    text = knowledge(qa=lambda i, j: ("What is shared?" if (i, j) in ((0, 1), (3, 2)) else f"Q{i}-{j}?", f"A{i}{j}"))
    assert check(text, KNOWLEDGE).findings == []


def test_knowledge_question_repeated_within_one_context_is_an_error():
    text = knowledge(qa=lambda i, j: ("What is  SHARED?" if (i, j) in ((2, 0), (2, 2)) else f"Q{i}-{j}?", f"A{i}{j}"))
    f = only(check(text, KNOWLEDGE), "duplicate-seed")
    assert f.severity == "error" and f.message.startswith("question (in the same context) repeats")
    assert at(f) == pos(text, "What is  SHARED?", nth=2)


def test_knowledge_repeated_context_is_a_warning():
    text = knowledge(context=lambda i: "Same  context." if i in (1, 4) else f"Context {i}.")
    f = only(check(text, KNOWLEDGE), "repeated-context")
    assert f.severity == "warning" and f.message.startswith("context repeats")
    assert at(f) == pos(text, "Same  context.", nth=2)
    assert check(text, KNOWLEDGE).errors == []


def test_knowledge_whole_seed_repeated_is_one_error():
    text = knowledge(context=lambda i: "Same context." if i in (1, 4) else f"Context {i}.",
                     qa=lambda i, j: (f"Q{j}?", f"A{j}") if i in (1, 4) else (f"Q{i}-{j}?", f"A{i}{j}"))
    report = check(text, KNOWLEDGE)
    f = only(report, "duplicate-seed")
    assert f.message.startswith("seed example repeats") and report.findings == [f]


# ---------------------------------------------------------------- word limits


def _words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{k}" for k in range(n))


def test_context_too_long_default():
    text = knowledge(context=lambda i: _words(501) if i == 2 else f"Context {i}.")
    f = only(check(text, KNOWLEDGE), "context-too-long")
    assert f.severity == "error"
    assert "501 words" in f.message and "500" in f.message
    assert at(f) == pos(text, "w0 w1 w2")
    assert check(knowledge(context=lambda i: _words(500, f"c{i}x")), KNOWLEDGE).findings == []


def test_context_too_long_with_config():
    text = knowledge(context=lambda i: _words(30, f"c{i}x"))
    assert check(text, KNOWLEDGE).findings == []
    report = check(text, KNOWLEDGE, Config(max_context_words=29))
    assert [f.check for f in report.findings] == ["context-too-long"] * 5


def test_qna_too_long_default():
    text = knowledge(qa=lambda i, j: (f"Q{i}{j}?", _words(90, f"a{j}x") if i == 1 else "A."))
    f = only(check(text, KNOWLEDGE), "qna-too-long")
    assert f.severity == "error"
    assert "the limit is 250" in f.message
    assert at(f) == pos(text, "- question: Q10?")


def test_qna_too_long_with_config():
    text = knowledge()
    report = check(text, KNOWLEDGE, Config(max_qna_words=5))
    assert [f.check for f in report.findings] == ["qna-too-long"] * 5


def test_skill_too_long_default():
    seeds = "".join(f"  - question: Q{i}?\n    answer: {_words(470, f'a{i}x')}\n" for i in range(5))
    text = skill(seed_text=seeds)
    f = only(check(text), "skill-too-long")
    assert f.severity == "error"
    assert "2355 words" in f.message and "2300" in f.message
    assert at(f) == pos(text, "- question: Q0?")


def test_skill_too_long_with_config():
    assert check(skill(), FOUNDATIONAL).findings == []
    f = only(check(skill(), FOUNDATIONAL, Config(max_skill_words=10)), "skill-too-long")
    assert "the limit is 10" in f.message


def test_word_limits_hold_in_characters_too():
    """A 220 KB seed without spaces is one "word": it used to pass and become a 220,808-character prompt."""
    blob = "x" * 220_000
    seeds = "".join(f"  - question: Q{i}?\n    answer: {blob if i == 0 else 'A.'}\n" for i in range(5))
    f = only(check(skill(seed_text=seeds), FOUNDATIONAL, Config(max_file_bytes=1 << 20)), "skill-too-long")
    assert "220,0" in f.message and "characters" in f.message and "23,000" in f.message
    text = knowledge(context=lambda i: "y" * 5001 if i == 2 else f"Context {i}.")
    assert "5,001 characters" in only(check(text, KNOWLEDGE), "context-too-long").message
    text = knowledge(qa=lambda i, j: (f"Q{i}{j}?", "z" * 900 if i == 1 else "A."))
    assert "characters" in only(check(text, KNOWLEDGE), "qna-too-long").message
    assert check(knowledge(context=lambda i: "y" * 4999 if i == 2 else f"Context {i}."), KNOWLEDGE).findings == []


# ---------------------------------------------------------------- paths


@pytest.mark.parametrize("folder,suggestion", [("Haiku", "haiku"), ("my leaf", "my_leaf"), ("foo-bar", "foo_bar")])
def test_leaf_path(folder, suggestion):
    report = check(skill(), f"compositional_skills/writing/{folder}/qna.yaml")
    f = only(report, "leaf-path")
    assert f.severity == "error"
    assert repr(folder) in f.message and repr(suggestion) in f.hint
    assert f.path == f"compositional_skills/writing/{folder}/qna.yaml"
    assert [g.check for g in report.findings] == ["leaf-path"]


@pytest.mark.parametrize("path", ["skills/writing/x/qna.yaml", "knowledge/qna.yaml", "qna.yaml",
                                  "Knowledge/a/b/qna.yaml"])
def test_leaf_branch(path):
    f = only(check(skill(), path), "leaf-branch")
    assert f.severity == "error"


@pytest.mark.parametrize("name", ["qna.yml", "QnA.yaml", "qna.yaml.txt"])
def test_leaf_filename(name):
    report = check(skill(), SKILL.replace("qna.yaml", name))
    f = only(report, "leaf-filename")
    assert f.severity == "error" and repr(name) in f.message and "qna.yaml" in f.hint


def test_windows_separators_are_normalized():
    report = check(skill(), SKILL.replace("/", "\\"))
    assert report.findings == [] and report.path == SKILL


# ---------------------------------------------------------------- versions and branches that pass


def test_skills_v1_without_version_and_one_seed_is_valid():
    report = check(skill(version=None, seeds=1))
    assert report.errors == [] and report.version == 1
    assert [(f.check, f.severity) for f in report.findings] == [("old-version", "warning")]


def test_skills_v1_allows_empty_task_description():
    text = skill(version=1, seeds=1).replace("task_description: Answer short questions.", 'task_description: ""')
    assert check(text).errors == []


def test_skills_v2_is_valid():
    report = check(skill(version=2))
    assert report.errors == [] and report.version == 2
    f = only(report, "old-version")
    assert f.severity == "warning" and "version 2" in f.message and "version: 3" in f.hint


# ---------------------------------------------------------------- upstream's pull-request rule: changed leaves need 3


@pytest.mark.parametrize("version, seeds", [(None, 5), (1, 5), (2, 5)])
def test_changed_leaf_older_than_3_is_an_error_with_the_fix(version, seeds):
    report = check_file(SKILL, skill(version=version, seeds=seeds).encode(), require_latest=True)
    f = only(report, "version")
    assert f.severity == "error" and "version 3" in f.message and "version: 3" in f.hint
    assert (f.line, f.column) != (0, 0)
    assert [e.check for e in report.errors] == ["version"]  # judged by v3; no duplicate schema finding


def test_changed_leaf_is_judged_by_the_newest_schema():
    v1_one_seed = skill(version=None, seeds=1)
    assert check(v1_one_seed).errors == []  # its own version (1) allows one seed
    report = check_file(SKILL, v1_one_seed.encode(), require_latest=True)
    assert {e.check for e in report.errors} == {"version", "schema"}
    assert any("needs at least 5 items" in e.message for e in report.errors)
    assert check_file(SKILL, skill(version=3).encode(), require_latest=True).findings == []


def test_skills_v2_needs_five_seeds():
    assert only(check(skill(version=2, seeds=4)), "schema").message.endswith("needs at least 5 items, has 4")


def test_foundational_skills_use_the_skills_schema():
    assert check(skill(), FOUNDATIONAL).findings == []
    bad = check(skill().replace("    answer: Answer number 0.\n", ""), FOUNDATIONAL)
    assert [f.check for f in bad.errors] == ["schema"]
    knowledge_shaped = check(knowledge(), FOUNDATIONAL)
    assert "schema" in {f.check for f in knowledge_shaped.errors}


def test_skill_shaped_leaf_in_knowledge_fails():
    assert "schema" in {f.check for f in check(skill(), KNOWLEDGE).errors}


def test_every_finding_id_is_registered():
    texts = [skill(), skill(seeds=1), "a: b\n", "a: [\n", "", knowledge(qas=1)]
    for text in texts:
        for path in (SKILL, KNOWLEDGE, "bad/qna.yml"):
            for f in check(text, path).findings:
                assert f.check in REGISTRY
                assert_severity(f)


def test_disabled_checks():
    text = skill().rstrip("\n")
    assert check(text, config=Config(disabled_checks=("final-newline",))).findings == []


@pytest.mark.parametrize("leaf", REAL_LEAVES, ids=lambda p: p.parent.relative_to(TAXONOMY).as_posix())
def test_real_taxonomy_leaves_are_clean(leaf):
    report = check_file(leaf.relative_to(TAXONOMY).as_posix(), leaf.read_bytes())
    assert report.errors == [] and report.warnings == [], report.findings


def test_there_are_real_leaves_in_every_branch():
    branches = {p.relative_to(TAXONOMY).parts[0] for p in REAL_LEAVES}
    assert branches == {"knowledge", "compositional_skills", "foundational_skills"}


@pytest.mark.parametrize("word", ["y", "n", "Y"])
def test_single_letters_are_text_for_pyyaml_and_not_truthy(word):
    report = check(skill().replace("Answer number 0.", word))
    assert report.findings == [] and report.data["seed_examples"][0]["answer"] == word


@pytest.mark.parametrize("brk", ["\r", "\x85", "\u2028", "\u2029"])
def test_positions_count_newline_separated_lines_whatever_yaml_breaks_on(brk):
    """libyaml also breaks lines at CR, NEL, LS and PS; findings must still match the editor's '\\n' lines."""
    text = skill().replace("created_by: tester\n", f"created_by: tester{brk}\n")
    text = text.replace("answer: Answer number 3.", "answer: yes")
    text = text.replace("Question number 0?", f"'Question{brk}number 0?'")
    text = text.replace("task_description: Answer short questions.\n",
                        "task_description: Answer short questions.\ncreated_by: again\n")
    report = check(text)
    assert at(only(report, "truthy")) == pos(text, "yes")
    dup = only(report, "duplicate-key")
    assert at(dup) == pos(text, "created_by: again")
    assert f"first at line {pos(text, 'created_by: tester')[0]}" in dup.message


def test_schema_positions_after_a_lone_carriage_return():
    text = skill().replace("version: 3\n", "version: 3\r").replace("created_by: tester", "created_by: 42")
    assert at(only(check(text), "schema")) == pos(text, "42")


# ---------------------------------------------------------------- hints that name the real mistake


def test_misspelled_key_in_a_qna_pair_gets_did_you_mean():
    text = knowledge().replace("answer: Answer 0-1", "anwser: Answer 0-1", 1)
    f = only(check(text, KNOWLEDGE), "schema")
    assert "'anwser' is here instead" in f.message and "Did you mean 'answer'" in f.hint
    assert at(f) == pos(text, "anwser")


def test_over_indented_answer_swallowed_into_the_question_is_named():
    good = skill().replace("  - question: Question number 0?", "  - question: >-\n      Question number 0?", 1)
    assert check(good).findings == []
    line = next(x for x in good.split("\n") if x.strip().startswith("answer:"))
    text = good.replace(line, "    " + line, 1)  # now deeper than the block's text: it joins the question
    f = only(check(text), "schema")
    assert "indented further than 'question:'" in f.message and "same column" in f.hint


def test_answer_with_no_value_says_write_the_text_not_quote_it():
    line = next(x for x in skill().split("\n") if x.strip().startswith("answer:"))
    text = skill().replace(line, line.split("answer:")[0] + "answer:", 1)
    f = only(check(text), "schema")
    assert "nothing (null)" in f.message and "Quote" not in f.hint and "after 'answer:'" in f.hint


def test_bom_in_attribution_is_not_a_missing_title():
    from labrador.validators.checks import attribution

    data = "\ufeffTitle of work: Haiku\nLink to work: https://example.com\nRevision: 1\n" \
           "License of the work: CC-BY-4.0\nCreator names: A\n"
    assert list(attribution.check("x/attribution.txt", data.encode("utf-8"), Config())) == []
