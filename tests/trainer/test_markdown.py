"""``trainer.markdown``: the one escaping module of ``labrador check`` previews and the bot. Hostile text is inert
in every sink: inline text, raw HTML (``<summary>``), fenced blocks."""

from __future__ import annotations

import re

import pytest
from hostile import EVERY, HOSTILE, MENTION, assert_inert

from labrador.trainer import markdown as md


def test_inline_text_escapes_everything() -> None:
    out = md.text(HOSTILE)
    assert_inert(out)
    assert "<!--" not in out
    assert "@\u200dacme" in out and "&lt;script>" in out
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


def test_code_block_fence_outgrows_content_and_text_escapes() -> None:
    assert md.code_block("a ```` b", lang="text").startswith("`````text\n")
    assert md.text("*bold* <b> @me #1\nnext") == f"\\*bold\\* &lt;b> @{md.ZWJ}me #{md.ZWJ}1<br>next"
    assert md.text("x" * 50, limit=10).endswith("x …")
    with pytest.raises(ValueError):
        md.code_block("x", lang="text\n<!--")  # the info string is ours, never content


def test_inline_text_leaves_plain_punctuation_alone_so_it_reads_well() -> None:
    # The report is read as plain text too: nothing Markdown would not act on gets a backslash or an entity.
    prose = "It's a \"well-known\" fact: 3.5 > 2 = true! over_limit (see notes) & more."
    assert md.text(prose) == prose
    # ...while what Markdown does act on is still made literal.
    assert md.text("_em_ a*b* `c` [d](e) ~s~ $x$ | &amp;") == \
        "\\_em\\_ a\\*b\\* \\`c\\` \\[d\\]\\(e) \\~s\\~ \\$x\\$ \\| &amp;amp;"
    for opener in ("- item", "+ item", "> quote", "12. item", "3) item", "==="):
        assert "\\" in md.text(opener) and md.text(opener).replace("\\", "") == opener, opener
    assert md.text("12. item") == "12\\. item" and md.text("> q") == "\\> q" and md.text("a - b") == "a - b"


def test_html_context_for_summaries() -> None:
    out = md.html('<b>"@team"</b> #12')
    assert out == "&lt;b&gt;&quot;@\u200dteam&quot;&lt;/b&gt; #\u200d12"
    # Markdown specials become entities too: inside raw HTML a backslash would show, and GitHub still
    # renders emphasis, code and links in a <summary>.
    out = md.html("*x* `y` [z](javascript:1) a|b ~~s~~ _u_\nnext")
    assert not set(out) & set("*`[]()|~_") and "\n" not in out
    assert out.startswith("&#42;x&#42; &#96;y&#96;")


@pytest.mark.parametrize("text", EVERY)
def test_every_sink_is_inert(text: str) -> None:
    for out in (md.text(text), md.html(text), md.code_block(text), md.code_block(text, lang="text")):
        assert_inert(out)
        assert "<!--" not in out
    for out in (md.text(text), md.html(text)):  # live text: no mention, no reference, no link, no tag
        assert not MENTION.search(out) and not re.search(r"(?<![\\&])#(?!\u200d)\w", out)
        assert "](" not in out and "<" not in out.replace("<br>", "")  # (our own line breaks)
    block = md.code_block(text)
    fence = block.split("\n", 1)[0]
    assert fence not in block[len(fence):-len(fence)]  # nothing inside closes it early


def test_requester_login_is_only_mentioned_when_well_formed() -> None:
    assert md.user("maria") == "@maria"
    assert md.user("labrador[bot]") == "@labrador[bot]"
    assert "@" + md.ZWJ in md.user("evil/@team")
