"""A file must end with one newline, or tools that concatenate files break."""

from collections.abc import Iterator

from ..findings import Finding

ID = "final-newline"
SEVERITY = "warning"
DESCRIPTION = "the file does not end with a newline"


def check(text: str, lines: list[str]) -> Iterator[Finding]:
    if text and not text.endswith("\n"):
        yield Finding(ID, SEVERITY, "no newline at end of file", len(lines), len(lines[-1]) + 1,
                      hint="Add a newline after the last line.")
