"""Generator settings from ``[generate]`` in labrador.toml and the command line: where samples go, the recipe,
the run seed, how many samples a preview shows. The teacher is configured in ``[teacher]``
(:mod:`labrador.trainer.teachers.config`).

Core-only on purpose (stdlib + the settings loader): ``labrador check`` reads it on installs without the
``[sdg]`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labrador.validators.settings import section_values

SECTION = "generate"
if TYPE_CHECKING:  # the bounded types of these keys (read by validators.settings)
    from labrador.validators.typed import Count, Text


@dataclass(frozen=True)
class GenerateSettings:
    """Everything ``labrador generate`` needs besides the leaves and the teacher. ``None``: not set anywhere."""

    seed: Count = 0
    out: Text | None = None  # output folder
    recipe: Text | None = None  # mixing recipe (default: trainer/recipes/default.yaml)
    preview_samples: Count = 3  # samples per leaf in `labrador check` previews

    def merged(self, **overrides: Any) -> GenerateSettings:
        """A copy with every override that is not ``None`` applied (command-line flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def load_settings(path: Path | None) -> GenerateSettings:
    """``[generate]`` of ``path`` (may be ``None`` or missing). Relative ``out`` and ``recipe`` paths are resolved
    against the file's folder, so a setting means the same thing whatever folder the command runs from."""
    values = section_values(path, SECTION, GenerateSettings(), paths=("out", "recipe"))
    return GenerateSettings(**values)
