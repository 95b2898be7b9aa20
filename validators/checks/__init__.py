"""The checks, one module each (yamllint-style): ``ID``, ``SEVERITY``, ``DESCRIPTION`` (or ``CHECKS``, a
table of them, for a module that reports several ids) and ``check``.

``TEXT_CHECKS`` take the decoded file (``check(text, lines)``); the others are called by ``leaf``
(``check(data, marks, branch, ...)`` after the schema passed) or ``folder`` (files of a leaf folder); a
module such as ``parser`` only documents ids the YAML loader reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from . import (
    attribution,
    documents,
    duplicate_seed,
    encoding,
    final_newline,
    leaf_files,
    leaf_path,
    parser,
    schema,
    tabs,
    trailing_spaces,
    word_limits,
)


@dataclass(frozen=True)
class CheckInfo:
    id: str
    severity: str
    description: str


def _infos(module: ModuleType) -> list[CheckInfo]:
    if hasattr(module, "CHECKS"):
        return [CheckInfo(*row) for row in module.CHECKS]
    return [CheckInfo(module.ID, module.SEVERITY, module.DESCRIPTION)]


TEXT_CHECKS = (tabs, trailing_spaces, final_newline)
ALL_MODULES = (
    encoding,
    parser,
    tabs,
    trailing_spaces,
    final_newline,
    leaf_path,
    schema,
    duplicate_seed,
    word_limits,
    leaf_files,
    attribution,
    documents,
)
REGISTRY: dict[str, CheckInfo] = {info.id: info for m in ALL_MODULES for info in _infos(m)}
