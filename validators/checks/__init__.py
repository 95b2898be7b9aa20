"""The checks, one module each (yamllint-style): ``ID``, ``SEVERITY``, ``DESCRIPTION`` and ``check``.

``STAGE`` says what a check needs: ``text`` (the decoded file), ``data`` (the parsed mapping, after
the schema passed for that part) or ``parser`` (found while parsing; the module only documents it).
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
