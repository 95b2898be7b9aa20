"""Synthetic-data previews for ``/lab preview``: a small protocol, and an adapter to the trainer's generator.

Why a protocol: the bot must not import the generator (``trainer.sdg``, its teachers, torch) to start, tests
plug in a tiny previewer, and the trainer's API may change without touching job logic. ``TrainerPreviewer``
imports the generator lazily. (The pure, stdlib-only ``trainer.markdown`` and ``trainer.preview`` renderers
are imported at start: the bot posts the same preview Markdown as ``labrador check``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trainer.preview import sample_fields

Documents = Sequence[tuple[str, bytes]]


@dataclass
class PreviewResult:
    """What a preview of one leaf yields. Each sample: ``question``, ``answer`` and optionally ``context``."""

    samples: list[dict[str, str]] = field(default_factory=list)
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""  # set when the preview failed; shown to the reviewer (it is escaped like everything else)


class Previewer(Protocol):
    async def preview(self, leaf_relpath: str, leaf_bytes: bytes, documents: Documents,
                      report: Any = None) -> PreviewResult:
        """Generate a handful of samples for one leaf (``leaf_relpath`` is taxonomy-relative)."""


class TrainerPreviewer:
    """``trainer.sdg.preview_leaf`` with a teacher built from a spec string (e.g. an OpenAI-compatible URL)."""

    def __init__(self, teacher_spec: str, samples: int = 3, config: Any = None, out_dir: Path | None = None,
                 **teacher_options: Any) -> None:
        self.teacher_spec = teacher_spec
        self.samples = samples
        self.config = config
        self.out_dir = out_dir
        self.teacher_options = teacher_options
        self._teacher: Any = None

    def _get_teacher(self) -> Any:
        if self._teacher is None:
            from trainer.teachers import make_teacher  # lazy: the bot starts without the trainer

            self._teacher = make_teacher(self.teacher_spec, **self.teacher_options)
        return self._teacher

    async def preview(self, leaf_relpath: str, leaf_bytes: bytes, documents: Documents,
                      report: Any = None) -> PreviewResult:
        from trainer.sdg import preview_leaf

        result = await preview_leaf(leaf_relpath, leaf_bytes, self._get_teacher(), samples=self.samples,
                                    documents=list(documents) or None, config=self.config, out_dir=self.out_dir,
                                    report=report)
        return PreviewResult(samples=[sample_fields(s) for s in getattr(result, "samples", [])],
                             kept=int(getattr(result, "kept", 0)), dropped=dict(getattr(result, "dropped", {})),
                             seconds=float(getattr(result, "seconds", 0.0)), error=str(getattr(result, "error", "")))


def make_previewer(teacher_spec: str, samples: int = 3, config: Any = None) -> Previewer | None:
    """The production previewer, or None when no teacher is configured (``/lab preview`` then says so)."""
    return TrainerPreviewer(teacher_spec, samples, config) if teacher_spec else None
