"""What a leaf folder is made of: one place for the names every part of Labrador agrees on."""

from __future__ import annotations

from collections.abc import Iterable

LEAF_FILE = "qna.yaml"
ATTRIBUTION = "attribution.txt"
LEAF_FILES = frozenset({LEAF_FILE, ATTRIBUTION})
BRANCHES = ("knowledge", "compositional_skills", "foundational_skills")


def is_misnamed(name: str) -> bool:
    """``qna.yml``, ``QnA.yaml``...: meant as the leaf file, silently skipped upstream."""
    low = name.lower()
    return name != LEAF_FILE and low.startswith("qna") and low.endswith((".yaml", ".yml"))


def is_leaf_folder(names: Iterable[str]) -> bool:
    """A folder holds a leaf when it has ``qna.yaml`` or a file clearly meant to be it."""
    return any(n == LEAF_FILE or is_misnamed(n) for n in names)
