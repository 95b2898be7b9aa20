"""What every step of a night reads: the taxonomy, the state folder, the settings in force and where to say
what happens. In a module of its own so that every helper of the night (generation, evaluation, the held-out
measure, the report) can take a :class:`Night` without importing the night that calls it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labrador.validators import Config

from ..evaluation.settings import EvaluateSettings
from ..teachers.config import TeacherSettings
from .registry import Registry
from .settings import NightlySettings

Say = Callable[[str], None]


@dataclass
class Night:
    """One night's inputs, resolved: the helpers of :mod:`~labrador.trainer.nightly.night` take this."""

    taxonomy: Path
    state: Path
    settings: NightlySettings
    teacher: TeacherSettings
    checker: Config
    say: Say = lambda text: None
    evaluate: EvaluateSettings = EvaluateSettings()  # [evaluate]: how the judged evaluation answers
    config: Path | None = None  # the settings file (hooks read their own sections from it)

    def __post_init__(self) -> None:  # the registry records paths: absolute, so `labrador runs` works anywhere
        self.taxonomy, self.state = Path(self.taxonomy).resolve(), Path(self.state).resolve()

    @property
    def registry(self) -> Registry:
        return Registry(self.state / "registry.db")
