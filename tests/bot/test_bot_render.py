"""Rendering: hostile contributor and teacher text is inert in every part of the comment, which stays in bounds.

The escaping itself (``trainer.markdown``) is tested in test_markdown.py, the shared preview in test_preview.py.
"""

from __future__ import annotations

import re

import pytest
from hostile import EVERY, HOSTILE, assert_inert

from labrador.bot import render
from labrador.bot.forge import STICKY_MARKER
from labrador.bot.preview import PreviewResult
from labrador.trainer.preview import render_preview_markdown
from labrador.validators import Finding, Report
from labrador.validators.changes import Changes

HEAD = "0123456789abcdef0123456789abcdef01234567"


def hostile_report() -> Report:
    path = "knowledge/@acme|x/<b>/qna.yaml"
    return Report(path=path, branch="knowledge", findings=[
        Finding("schema", "error", HOSTILE, 3, 5, hint=HOSTILE, path=path),
        Finding("trailing-spaces", "warning", "trailing | pipe", 9, 1, path=path)])


def test_table_of_findings_keeps_its_shape_with_pipes_in_text() -> None:
    section = render.validation_section([hostile_report()], Changes(["knowledge/x"], [], ""), HEAD, "taxonomy")
    assert_inert(section)
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert len(rows) == 3  # header + two findings
    for row in rows:
        assert len(re.findall(r"(?<!\\)\|", row)) == 5  # four cells: no extra column from contributor pipes
    assert "taxonomy/knowledge/" in section and "qna.yaml:3:5" in section
    assert "❌ Validation failed" in section
    assert "`0123456789ab`" in section


def test_sticky_marker_cannot_be_forged_by_a_pull_request() -> None:
    leaf = render.LeafPreview("compositional_skills/x/qna.yaml", [{"question": HOSTILE, "answer": HOSTILE}],
                              PreviewResult([{"question": HOSTILE, "answer": HOSTILE, "context": HOSTILE}], 1,
                                            {"judge<script>": 2}, 1.5))
    sections = {"validation": render.validation_section([hostile_report()], Changes([], [], ""), HEAD, ""),
                "preview": render.preview_section([leaf], HEAD, "maria"),
                "notice": render.refused("@evil/team", HOSTILE)}
    body = render.compose(sections)
    assert body.startswith(STICKY_MARKER) and body.count(STICKY_MARKER) == 1
    assert_inert(body, requester="maria")
    assert render.parse_sticky(body) == sections  # nothing inside can end a section early


@pytest.mark.parametrize("text", EVERY)
def test_every_hostile_text_is_inert_in_the_comment(text: str) -> None:
    """The preview tests' inputs, through every part of the sticky comment the bot posts."""
    path = f"knowledge/{text}/qna.yaml"
    report = Report(path=path, branch="knowledge", findings=[Finding("schema", "error", text, 1, 1, hint=text,
                                                                     path=path)])
    leaves = [render.LeafPreview(path, [{"context": text, "question": text, "answer": text}],
                                 PreviewResult([{"question": text, "answer": text, "context": text}], 1, {text: 2},
                                               0.5, error=text)),
              render.LeafPreview(path, [], PreviewResult(error=text)),
              render.LeafPreview(path, [], skipped=text)]
    sections = {"validation": render.validation_section([report], Changes([text], [], ""), HEAD, text),
                "preview": render.preview_section(leaves, HEAD, "maria"),
                "notice": render.refused(text, text)}
    body = render.compose(sections)
    assert body.startswith(STICKY_MARKER) and body.count(STICKY_MARKER) == 1
    assert_inert(body, requester="maria")
    assert render.parse_sticky(body) == sections


def test_preview_section_is_the_check_hooks_markdown_under_the_bots_heading() -> None:
    """``labrador check`` shows the same Markdown the bot posts: each leaf verbatim, in order, after the heading."""
    seeds = [{"question": "seed q", "answer": "seed a"}]
    leaves = [render.LeafPreview("compositional_skills/x/qna.yaml", seeds,
                                 PreviewResult([{"question": "gen q?", "answer": "gen a"}], 1, {"judge": 3}, 2.25)),
              render.LeafPreview("compositional_skills/y/qna.yaml", seeds, PreviewResult(error="teacher down")),
              render.LeafPreview("knowledge/z/qna.yaml", [], skipped="has errors")]
    out = render.preview_section(leaves, HEAD, "maria", skipped=2)
    expected = [render_preview_markdown(leaf.path, leaf.seeds, leaf.result, leaf.skipped) for leaf in leaves]
    assert out == (f"### 🔎 Preview for `{HEAD[:12]}`, requested by @maria\n\n"
                   "2 more leaf folder(s) were not previewed (limit reached).\n\n" + "\n\n".join(expected))


def test_preview_shows_samples_beside_seeds_with_counts() -> None:
    leaf = render.LeafPreview("compositional_skills/x/qna.yaml", [{"question": "seed q", "answer": "seed a"}],
                              PreviewResult([{"question": "gen q?", "answer": "gen a"}], 1, {"judge": 3}, 2.25,
                                            generated=4))
    out = render.preview_section([leaf, render.LeafPreview("knowledge/y/qna.yaml", [], skipped="has errors")],
                                 HEAD, "maria")
    assert "requested by @maria" in out  # the requester is notified on purpose (a well-formed login)
    assert "generated **4** · kept **1** · dropped: judge 3 · 2.2 s" in out  # the yield, in one line
    assert "<details><summary>Seeds (1)</summary>" in out and "<details><summary>Sample 1: gen q?</summary>" in out
    assert "Not previewed: has errors" in out


def test_comment_is_bounded_by_githubs_limit() -> None:
    huge = "word " * 3000
    leaves = [render.LeafPreview(f"compositional_skills/l{i}/qna.yaml", [{"question": huge, "answer": huge}] * 5,
                                 PreviewResult([{"question": huge, "answer": huge}] * 20, 20, {}, 1.0))
              for i in range(10)]
    reports = [Report(path=f"knowledge/l{i}/qna.yaml", findings=[Finding("schema", "error", huge, i + 1, 1)] * 40)
               for i in range(50)]
    body = render.compose({"preview": render.preview_section(leaves, HEAD, "maria"),
                           "validation": render.validation_section(reports, Changes([], [], ""), HEAD, "taxonomy"),
                           "notice": render.help_text("maria", "/lab help")})
    assert len(body) <= render.LIMIT
    assert "not shown" in body
    assert body.count("<details>") == body.count("</details>")  # blocks are never cut in half
    assert len(re.findall(r"^`{3,}", body, re.M)) % 2 == 0


def test_compose_replaces_an_oversized_section_rather_than_exceed_the_limit() -> None:
    body = render.compose({"validation": "x" * 70_000, "notice": "hello"})
    assert len(body) <= render.LIMIT and "too large" in body and "hello" in body


def test_parse_sticky_ignores_other_comments() -> None:
    assert render.parse_sticky("not ours <!-- labrador:section:notice -->\nx\n<!-- labrador:end:notice -->") == {}
