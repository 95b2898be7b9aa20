"""``labrador check`` previews: the shared Markdown renderer (escaping hostile text) and the check hook."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from hostile import EVERY, assert_inert, visible

from labrador.trainer.preview import (
    NO_TEACHER,
    _previews,
    check_hook,
    render_markdown,
    render_preview_markdown,
    render_preview_text,
    render_text,
    seeds_of,
)
from labrador.trainer.sdg import LeafResult
from labrador.validators import cli as checker_cli

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "sdg"
HAIKU = "compositional_skills/writing/freeform/haiku"


def sample(question: str, answer: str) -> dict:
    return {"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": question},
                         {"role": "assistant", "content": answer}], "leaf": HAIKU}


@pytest.mark.parametrize("text", EVERY)
def test_hostile_text_is_inert_everywhere(text: str) -> None:
    res = LeafResult(f"{HAIKU}/qna.yaml", "ok", kept=1, dropped={"judge_rejected": 2, text: 1},
                     samples=[sample(text, text)], error="")
    out = render_preview_markdown(f"{HAIKU}/{text}", [{"question": text, "answer": text}], res)
    live = visible(out)
    assert "<!--" not in out
    assert "<script" not in live and "<img" not in live and "](" not in live
    assert not re.search(r"(?<![\\])@(?!\u200d)\w", live)  # every live @ is escaped and broken with a ZWJ
    assert not re.search(r"(?<![\\&])#(?!\u200d)\w", live)  # (&#NN; entities are fine)
    assert "\u202e" not in out
    fences = re.findall(r"(?m)^(`{3,})text$", out)
    assert fences and all(len(f) >= 3 for f in fences)
    for block in re.findall(r"(?ms)^(`{3,})text\n(.*?)\n\1$", out):  # no fence closes early
        assert block[0] not in block[1]
    assert_inert(out)  # what the bot's comment tests ask of the same Markdown


@pytest.mark.parametrize("text", EVERY)
def test_check_hook_output_is_inert(text: str, tmp_path: Path) -> None:
    """What the hook prints (title, every leaf) with a hostile teacher name, leaf, seeds, samples and errors."""

    async def preview_leaf(path: str, data: bytes, teacher: object, **_: object) -> LeafResult:
        if path.endswith("/failed/qna.yaml"):
            return LeafResult(path, "failed", error=text)
        return LeafResult(path, "partial", kept=1, dropped={text: 1}, samples=[sample(text, text)], error=text)

    class Teacher:
        name = text
        closed = False

        async def aclose(self) -> None:
            self.closed = True

    data = {"seed_examples": [{"context": text, "questions_and_answers": [{"question": text, "answer": text}]}]}
    reports = [SimpleNamespace(path=f"compositional_skills/{text}/{kind}/qna.yaml", data=data, branch=branch)
               for kind, branch in (("ok", "compositional"), ("failed", "compositional"), ("docs", "knowledge"))]
    for report in reports:  # the hook reads each leaf from the taxonomy (a hostile path is a legal file name)
        (tmp_path / report.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / report.path).write_text("version: 3\n")
    teacher = Teacher()
    previews = asyncio.run(_previews(preview_leaf, reports, tmp_path, teacher, 1, 0, None, None, False))
    assert teacher.closed
    plain = render_text(previews, teacher.name)  # a terminal: no escape sequence, no hidden character
    assert "\x1b" not in plain and "\u202e" not in plain and "\x07" not in plain
    assert plain.startswith("Preview: 3 leaf(s), teacher ") and "documents are off" in plain
    out = render_markdown(previews, teacher.name)
    assert out.startswith("### Preview: 3 leaf(s), teacher ") and out.count("\n#### ") == 3
    assert "_Not previewed: documents are off" in out and "_The preview failed: " in out
    assert "_Some requests failed: " in out and "<summary>Sample 1: " in out
    live = visible(out)
    assert "<!--" not in out and "\u202e" not in out
    assert "<script" not in live and "<img" not in live and "](" not in live
    assert not re.search(r"(?<![\\])@(?!\u200d)\w", live)
    assert not re.search(r"(?<![\\&])#(?!\u200d)\w", live)
    assert_inert(out)


def test_render_layout_seeds_stats_and_samples() -> None:
    seeds = [{"question": "Write a haiku about rain.", "answer": "Rain taps on the roof"}]
    res = LeafResult(f"{HAIKU}/qna.yaml", "ok", generated=6, kept=2, dropped={"duplicate": 3, "judge_rejected": 1},
                     seconds=1.25, samples=[sample("Q one?", "A one"), sample("Q two?", "A two")])
    out = render_preview_markdown(f"{HAIKU}/qna.yaml", seeds, res)
    assert out.startswith("#### compositional_skills/writing/freeform/haiku/qna.yaml\n\n")
    assert "generated **6** · kept **2** · dropped: duplicate 3, judge_rejected 1 · 1.2 s" in out
    assert "<details><summary>Seeds (1)</summary>" in out and "Write a haiku about rain." in out
    assert "<summary>Sample 1: Q one?</summary>" in out and "<summary>Sample 2: Q two?</summary>" in out
    empty = render_preview_markdown("x/qna.yaml", seeds, LeafResult("x/qna.yaml", "ok", dropped={"parse_error": 4}))
    assert "_No sample passed the filters._" in empty
    failed = render_preview_markdown("x/qna.yaml", seeds, LeafResult("x/qna.yaml", "failed", error="boom <b>"))
    assert "_The preview failed: boom &lt;b>_" in failed
    flat = SimpleNamespace(samples=[{"question": "q", "answer": "a", "context": "c"}], kept=1, dropped={},
                           seconds=0.0, error="")  # the bot's PreviewResult shape
    assert "**Context**" in render_preview_markdown("x/qna.yaml", [], flat)
    assert render_preview_markdown("x/qna.yaml", seeds, None) == "#### x/qna.yaml\n\n_Not previewed._"
    skipped = render_preview_markdown("x/qna.yaml", seeds, None, skipped="documents are off (--no-documents)")
    assert skipped == "#### x/qna.yaml\n\n_Not previewed: documents are off (--no-documents)_"


def test_text_preview_is_plain_with_the_same_facts_as_the_markdown() -> None:
    seeds = [{"question": "Write a haiku about <rain> & snow.", "answer": "Rain taps\non the roof"}]
    res = LeafResult(f"{HAIKU}/qna.yaml", "ok", generated=6, kept=2, dropped={"duplicate": 3, "judge_rejected": 1},
                     seconds=1.25, samples=[sample("Q *one*?", "A one"), sample("Q two?", "A \x1b[31mred")])
    out = render_preview_text(f"{HAIKU}/qna.yaml", seeds, res)
    assert out.startswith("compositional_skills/writing/freeform/haiku/qna.yaml\n")
    assert "generated 6 · kept 2 · dropped: duplicate 3, judge_rejected 1 · 1.2 s" in out
    assert "    question: Write a haiku about <rain> & snow." in out  # no entity, no backslash
    assert "    answer: Rain taps\n      on the roof" in out  # a multi-line answer stays indented
    assert "  sample 1:\n    question: Q *one*?\n    answer: A one" in out
    assert "\x1b" not in out and "\\u001b[31mred" in out  # a terminal escape is shown, never sent
    for markup in ("<details>", "**", "&lt;", "&amp;", "#### "):
        assert markup not in out
    assert "no sample passed the filters" in render_preview_text("x/qna.yaml", seeds, LeafResult("x/qna.yaml", "ok"))
    assert render_preview_text("x/qna.yaml", seeds, None, skipped="off") == "x/qna.yaml\n  not previewed: off"


def test_seeds_of_knowledge_and_skills() -> None:
    assert seeds_of({"seed_examples": [{"context": "c", "questions_and_answers": [
        {"question": "q1", "answer": "a1"}, {"question": "q2", "answer": "a2"}]}]}) == [
        {"context": "c", "question": "q1", "answer": "a1"}]
    assert seeds_of({"seed_examples": [{"question": "q", "answer": "a"}, "junk"]}) == [{"question": "q", "answer": "a"}]
    assert seeds_of(None) == []


# -- the hook ---------------------------------------------------------------------------------------------


@pytest.fixture
def taxonomy(tmp_path: Path) -> Path:
    tax = tmp_path / "taxonomy"
    shutil.copytree(ROOT / "taxonomy" / HAIKU, tax / HAIKU)
    return tax


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LABRADOR_TEACHER", "LABRADOR_NO_PREVIEW", "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)


def check(monkeypatch: pytest.MonkeyPatch, taxonomy: Path, *extra: str) -> int:
    """``labrador check --all`` with our hook registered as its entry point would register it."""
    hook = SimpleNamespace(load=lambda: check_hook)
    monkeypatch.setattr(checker_cli, "entry_points",
                        lambda group: [hook] if group == "labrador.check_hooks" else [])
    parser = argparse.ArgumentParser()
    checker_cli.register_check(parser.add_subparsers())
    args = parser.parse_args(["check", "--all", "--no-cache", "--taxonomy", str(taxonomy), *extra])
    return args.func(args)


def test_no_teacher_prints_one_line_and_validation_still_runs(monkeypatch, taxonomy: Path, capsys) -> None:
    assert check(monkeypatch, taxonomy) == 0
    out = capsys.readouterr().out
    assert out.count(NO_TEACHER) == 1
    hint = [line for line in out.splitlines() if "teacher" in line and not line.startswith("checked: ")]
    assert hint == [NO_TEACHER] and "[teacher]" in NO_TEACHER and "LABRADOR_TEACHER" in NO_TEACHER
    assert "1 leaf" in out or "checked" in out  # the checker's own summary is still there


def test_preview_with_env_teacher_renders_samples_beside_seeds(monkeypatch, taxonomy: Path, capsys,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("LABRADOR_TEACHER", f"replay:{FIXTURES / 'freeform.json'}")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert check(monkeypatch, taxonomy) == 0
    plain = capsys.readouterr().out  # without --preview: one line, no generation
    assert "Preview" not in plain and plain.count("labrador check --preview") == 1
    assert check(monkeypatch, taxonomy, "--preview") == 0
    out = capsys.readouterr().out  # a person's terminal or log: plain text
    assert "Preview: 1 leaf(s), teacher replay-freeform" in out and "###" not in out and "<summary>" not in out
    assert "\ncompositional_skills/writing/freeform/haiku/qna.yaml\n" in out
    assert "  seeds (6):" in out and "  sample 1:" in out and re.search(r"kept [1-3] ", out)
    assert summary.read_text().startswith("### Preview")  # the GitHub job summary: Markdown
    assert check(monkeypatch, taxonomy, "--preview", "--format", "markdown") == 0
    out = capsys.readouterr().out  # what the bot posts
    assert "### Preview: 1 leaf(s), teacher replay-freeform" in out
    assert "#### compositional_skills/writing/freeform/haiku/qna.yaml" in out
    assert "<summary>Seeds (6)</summary>" in out and "<summary>Sample 1: " in out
    assert re.search(r"kept \*\*[1-3]\*\*", out)


def test_leaf_whose_verdict_comes_from_the_cache_is_still_previewed(monkeypatch, taxonomy: Path, capsys,
                                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    hook = SimpleNamespace(load=lambda: check_hook)
    monkeypatch.setattr(checker_cli, "entry_points",
                        lambda group: [hook] if group == "labrador.check_hooks" else [])
    args = ["check", "--all", "--preview", "--taxonomy", str(taxonomy)]
    assert checker_cli.main(args) == 0  # primes the verdict cache (no teacher yet)
    capsys.readouterr()
    monkeypatch.setenv("LABRADOR_TEACHER", f"replay:{FIXTURES / 'freeform.json'}")
    assert checker_cli.main(args) == 0  # the verdict is cached: the report carries no parsed leaf
    out = capsys.readouterr().out
    assert "  seeds (6):" in out and "  sample 1:" in out


def test_config_teacher_and_json_output_stays_clean(monkeypatch, taxonomy: Path, capsys, tmp_path: Path) -> None:
    (tmp_path / "labrador.toml").write_text(f'[teacher]\nspec = "replay:{FIXTURES / "freeform.json"}"\n'
                                            "[generate]\npreview_samples = 1\n")
    assert check(monkeypatch, taxonomy, "--format", "json", "--preview") == 0
    captured = capsys.readouterr()
    json.loads(captured.out)  # stdout is the checker's JSON only
    assert "  sample 1:" in captured.err and "sample 2" not in captured.err


def test_invalid_leaves_are_not_previewed_and_broken_teacher_does_not_hide_verdict(monkeypatch, taxonomy: Path,
                                                                                   capsys) -> None:
    (taxonomy / HAIKU / "qna.yaml").write_text("version: 3\n")
    monkeypatch.setenv("LABRADOR_TEACHER", f"replay:{FIXTURES / 'freeform.json'}")
    assert check(monkeypatch, taxonomy, "--preview") == 1  # the validation verdict, untouched
    assert "Preview" not in capsys.readouterr().out
    monkeypatch.setenv("LABRADOR_TEACHER", "ftp://nowhere")
    report = SimpleNamespace(ok=True, path=f"{HAIKU}/qna.yaml", data={"seed_examples": []}, branch="compositional")
    args = argparse.Namespace(taxonomy=taxonomy, config=None, format="human", quiet=False, no_documents=False,
                              preview=True)
    assert check_hook(args, [report]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("preview skipped: ValueError: unrecognised teacher spec") and len(out.splitlines()) == 1
    monkeypatch.setenv("LABRADOR_NO_PREVIEW", "1")
    assert check_hook(args, [report]) == 0 and capsys.readouterr().out == ""
