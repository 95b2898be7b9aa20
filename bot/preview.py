"""Synthetic-data previews for ``/lab preview``: a small protocol, and an adapter to the trainer's generator.

Why a protocol: the bot must not import the generator (``labrador.trainer.sdg``, its teachers, torch) to start, tests
plug in a tiny previewer, and the trainer's API may change without touching job logic. ``TrainerPreviewer``
imports the generator lazily. (The pure, stdlib-only ``trainer.markdown`` and ``trainer.preview`` renderers
are imported at start: the bot posts the same preview Markdown as ``labrador check``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from labrador.trainer.preview import sample_fields
from labrador.trainer.teachers.config import TeacherSettings, build_teacher

Documents = Sequence[tuple[str, bytes]]


@dataclass
class PreviewResult:
    """What a preview of one leaf yields. Each sample: ``question``, ``answer`` and optionally ``context``."""

    samples: list[dict[str, str]] = field(default_factory=list)
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""  # set when the preview failed; shown to the reviewer (it is escaped like everything else)
    generated: int = 0  # candidates the last fan-out step produced (before judges and deduplication)


class Previewer(Protocol):
    async def preview(self, leaf_relpath: str, leaf_bytes: bytes, documents: Documents,
                      report: Any = None) -> PreviewResult:
        """Generate a handful of samples for one leaf (``leaf_relpath`` is taxonomy-relative)."""


class TrainerPreviewer:
    """``labrador.trainer.sdg.preview_leaf`` with the project's teacher (``[teacher]``, built by the one builder)."""

    def __init__(self, teacher: TeacherSettings, samples: int = 3, config: Any = None,
                 out_dir: Path | None = None) -> None:
        self.teacher = teacher
        self.samples = samples
        self.config = config
        self.out_dir = out_dir
        self._teacher: Any = None

    def _get_teacher(self) -> Any:
        if self._teacher is None:
            self._teacher = build_teacher(self.teacher)  # backends load lazily: the bot starts without them
        return self._teacher

    async def preview(self, leaf_relpath: str, leaf_bytes: bytes, documents: Documents,
                      report: Any = None) -> PreviewResult:
        from labrador.trainer.sdg import preview_leaf

        result = await preview_leaf(leaf_relpath, leaf_bytes, self._get_teacher(), samples=self.samples,
                                    documents=list(documents) or None, config=self.config, out_dir=self.out_dir,
                                    report=report, profile=self.teacher.profile_name,
                                    structured=self.teacher.structured_on, judges=self.teacher.judges_on)
        return PreviewResult(samples=[sample_fields(s) for s in getattr(result, "samples", [])],
                             generated=int(getattr(result, "generated", 0)),
                             kept=int(getattr(result, "kept", 0)), dropped=dict(getattr(result, "dropped", {})),
                             seconds=float(getattr(result, "seconds", 0.0)), error=str(getattr(result, "error", "")))


def make_previewer(teacher: TeacherSettings, samples: int = 3, config: Any = None) -> Previewer | None:
    """The production previewer, or None when no teacher is configured (``/lab preview`` then says so)."""
    return TrainerPreviewer(teacher, samples, config) if teacher.spec else None
