"""Leaf paths become dataset names and URLs: lowercase words joined by underscores."""

import re
from collections.abc import Iterator

from ..findings import Finding

ID = "leaf-path"
SEVERITY = "error"
DESCRIPTION = "a leaf folder name that is not lowercase a-z, 0-9 and _ (no spaces, no capitals)"

_GOOD = re.compile(r"[a-z0-9_]+")


def suggest(name: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", name.lower())).strip("_") or "leaf"


def check(relpath: str) -> Iterator[Finding]:
    for part in relpath.split("/")[:-1]:
        if not _GOOD.fullmatch(part):
            yield Finding(ID, SEVERITY, f"folder name {part!r} is not lowercase words joined by '_'",
                          hint=f"Rename it to {suggest(part)!r}.")
