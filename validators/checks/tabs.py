"""Tab characters: invalid as YAML indentation and invisible in review."""

from collections.abc import Iterator

from ..findings import Finding

ID = "tabs"
SEVERITY = "warning"
DESCRIPTION = "a tab character; use spaces"


def check(text: str, lines: list[str]) -> Iterator[Finding]:
    if "\t" not in text:
        return
    for n, line in enumerate(lines, 1):
        col = line.find("\t")
        if col >= 0:
            yield Finding(ID, SEVERITY, "tab character", n, col + 1, hint="Replace tabs with spaces.")
