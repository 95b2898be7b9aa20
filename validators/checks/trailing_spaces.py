"""Trailing white space: noise in diffs, and in a block scalar it changes the text."""

from collections.abc import Iterator

from ..findings import Finding

ID = "trailing-spaces"
SEVERITY = "warning"
DESCRIPTION = "white space at the end of a line"


def check(text: str, lines: list[str]) -> Iterator[Finding]:
    if " \n" not in text and "\t\n" not in text and not text.endswith((" ", "\t")):
        return
    for n, line in enumerate(lines, 1):
        stripped = line.rstrip(" \t")
        if len(stripped) != len(line):
            yield Finding(ID, SEVERITY, "trailing spaces", n, len(stripped) + 1, hint="Delete them.")
