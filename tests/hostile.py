"""Hostile contributor and teacher text, and what "inert" means, for the escaping, preview and bot tests.

Shared so that the same inputs go through every sink: ``labrador.trainer.markdown`` alone, the ``labrador check``
preview and the bot's sticky comment.
"""

from __future__ import annotations

import re

# One string with everything at once (the bot's comment tests started from it).
HOSTILE = ("@acme/maintainers ping @octocat <script>alert(1)</script> <img src=x onerror=alert(1)> "
           "| a | b | ```\n```\n<!-- labrador:sticky --> <!-- labrador:end:validation --> [x](javascript:alert(1)) "
           "#1 **bold** \u202egnp.exe")
# One attack per string (the preview tests started from these).
HOSTILE_LINES = [
    "@octocat please look",
    "<!-- labrador:section:preview -->",
    "```\n# injected heading\n```",
    "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "[click](javascript:alert(1)) ![x](http://evil/track.png)",
    "fixes #123 and org/repo#4, cc @org/team",
    "| a | b |\n|---|---|",
    "````` five backticks",
    "right-to-left \u202e override",
]
EVERY = [*HOSTILE_LINES, HOSTILE]
MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9]")  # what GitHub would turn into a notification


def visible(markdown: str) -> str:
    """What stays outside the previews' fenced ``text`` blocks (where Markdown and HTML are live)."""
    return re.sub(r"(?ms)^(`{3,})text\n.*?\n\1$", "", markdown)


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
