"""Which leaves a path glob selects: the one dialect for recipes (groups, replay), distillation's DAE domain
and anything else that names leaves by pattern.

``*`` stays inside one folder, ``**`` crosses folders, and a pattern selects the folders it matches *and
everything below them* (``knowledge`` selects the whole knowledge branch).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache


@lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def glob_match(pattern: str, leaf: str) -> bool:
    """Does ``pattern`` select ``leaf``? A pattern selects the folders it matches *and everything below
    them*, so a branch (``knowledge``, ``compositional_skills/writing``) selects its whole subtree."""
    regex = _glob_regex(pattern.strip("/"))
    parts = leaf.strip("/").split("/")
    return any(regex.fullmatch("/".join(parts[:k])) for k in range(1, len(parts) + 1))


def selects(include: Sequence[str], exclude: Sequence[str], leaf: str) -> bool:
    """Included (or no include list) and not excluded."""
    inside = not include or any(glob_match(p, leaf) for p in include)
    return inside and not any(glob_match(p, leaf) for p in exclude)
