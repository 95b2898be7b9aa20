"""Rendering: hostile contributor and teacher text is inert in every sink, and the comment stays in bounds."""

from __future__ import annotations

import re

from bot import markdown as md
from bot import render
from bot.forge import STICKY_MARKER
from bot.preview import PreviewResult
from validators import Finding, Report
from validators.changes import Changes

HEAD = "0123456789abcdef0123456789abcdef01234567"
HOSTILE = ("@acme/maintainers ping @octocat <script>alert(1)</script> <img src=x onerror=alert(1)> "
           "| a | b | ```\n```\n<!-- labrador:sticky --> <!-- labrador:end:validation --> [x](javascript:alert(1)) "
           "#1 **bold** \u202egnp.exe")
MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9]")  # what GitHub would turn into a notification


def hostile_report() -> Report:
    path = "knowledge/@acme|x/<b>/qna.yaml"
    return Report(path=path, branch="knowledge", findings=[
        Finding("schema", "error", HOSTILE, 3, 5, hint=HOSTILE, path=path),
        Finding("trailing-spaces", "warning", "trailing | pipe", 9, 1, path=path)])


def outside_code(out: str) -> str:
    """The text outside fenced code blocks (inside them nothing is interpreted), checking fences pair up."""
    kept, fence = [], ""
    for line in out.split("\n"):
        run = re.match(r"^(`{3,})", line)
        if fence:
            if line == fence:
                fence = ""
        elif run:
            fence = run.group(1)
        else:
            kept.append(line)
    assert not fence, "unclosed code fence"
    return "\n".join(kept)


def assert_inert(out: str, requester: str = "") -> None:
    assert out.count("<!--") == out.count("<!-- labrador:")  # only our own markers, even inside code
    assert "\u202e" not in out
    prose = outside_code(out)
    assert "<script" not in prose and "<img" not in prose
    if requester:  # the requester is notified on purpose
        prose = prose.replace(f"requested by @{requester}", "")
    assert not MENTION.search(prose), "unbroken @mention"


def test_inline_text_escapes_everything() -> None:
    out = md.text(HOSTILE)
    assert_inert(out)
    assert "<!--" not in out
    assert "@\u200dacme" in out.replace("\\", "") and "&lt;script&gt;" in out
    assert "\\|" in out and "|" not in out.replace("\\|", "")
    assert "\n" not in out  # one line: safe in a table cell
    assert "\\u202e" in out  # bidi overrides are shown, not obeyed


def test_code_block_cannot_be_closed_early_or_hide_a_marker() -> None:
    body = "before\n````\n```\nafter <!-- labrador:sticky -->"
    out = md.code_block(body)
    fence = out.split("\n", 1)[0]
    assert set(fence) == {"`"} and len(fence) == 5
    assert out.endswith("\n" + fence) and out.count(fence) == 2
    assert "<!--" not in out


def test_html_context_for_summaries() -> None:
    out = md.html('<b>"@team"</b> #12')
    assert out == "&lt;b&gt;&quot;@\u200dteam&quot;&lt;/b&gt; #\u200d12"


def test_table_of_findings_keeps_its_shape_with_pipes_in_text() -> None:
    section = render.validation_section([hostile_report()], Changes(["knowledge/x"], [], ""), HEAD, "taxonomy")
    assert_inert(section)
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert len(rows) == 3  # header + two findings
    for row in rows:
        assert len(re.findall(r"(?<!\\)\|", row)) == 5  # four cells: no extra column from contributor pipes
    assert "taxonomy/knowledge/" in section and r"qna\.yaml\:3\:5" in section  # renders as qna.yaml:3:5
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


def test_preview_shows_samples_beside_seeds_with_counts() -> None:
    leaf = render.LeafPreview("compositional_skills/x/qna.yaml", [{"question": "seed q", "answer": "seed a"}],
                              PreviewResult([{"question": "gen q?", "answer": "gen a"}], 1, {"judge": 3}, 2.25))
    out = render.preview_section([leaf, render.LeafPreview("knowledge/y/qna.yaml", [], skipped="has errors")],
                                 HEAD, "maria")
    assert "requested by @maria" in out  # the requester is notified on purpose (a well-formed login)
    assert "kept **1**" in out and "judge 3" in out and "2.2 s" in out
    assert "<details><summary>Seeds (1)</summary>" in out and "<details><summary>Sample 1: gen q?</summary>" in out
    assert "Not previewed: has errors" in out


def test_requester_login_is_only_mentioned_when_well_formed() -> None:
    assert md.user("maria") == "@maria"
    assert md.user("labrador[bot]") == "@labrador[bot]"
    assert "@" + md.ZWJ in md.user("evil/@team")


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
