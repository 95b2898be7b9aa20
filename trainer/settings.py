"""Generator settings from ``[generate]`` in labrador.toml, the environment and the command line.

Core-only on purpose (stdlib + ``trainer.teachers.base``): ``labrador check`` reads it on installs without
the ``[sdg]`` extra, to say how to configure a teacher.

Why one place: ``labrador generate``, the ``labrador check`` preview and the bot must agree on which
teacher a project uses and how hard they may hit it. Precedence: command line, then environment
(``LABRADOR_TEACHER``), then the file, then defaults. Secrets never live here: only the *name* of the
environment variable that holds an API key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from validators.settings import ConfigError, section_values

from .teachers import Teacher, make_teacher

TEACHER_ENV = "LABRADOR_TEACHER"
PROFILES = ("full", "quick")
SECTION = "generate"
HOW_TO_CONFIGURE = (
    f"no teacher configured: set `teacher = \"http://HOST:PORT/v1\"` (or \"embedded\") under [{SECTION}] in "
    f"labrador.toml, or the environment variable {TEACHER_ENV}"
)


class SettingsError(ConfigError, ValueError):
    """A ``[generate]`` section that cannot be used; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class GenerateSettings:
    """Everything ``labrador generate`` needs besides the leaves. ``None``: not set anywhere."""

    teacher: str | None = None  # spec: URL, vllm:PATH, model dir, replay:FILE
    max_concurrency: int = 8  # requests in flight to the teacher, across all leaves
    api_key_env: str | None = None  # NAME of the variable holding the key (HTTP teacher)
    model: str | None = None  # model id on the server (HTTP teacher); default: discovered
    tokenizer: str | None = None  # tokenizer.json / model dir for exact chunk sizes (HTTP teacher)
    seed: int = 0
    out: str | None = None  # output folder
    recipe: str | None = None  # mixing recipe (default: trainer/recipes/default.yaml)
    preview_samples: int = 3  # samples per leaf in `labrador check` previews
    profile: str = "full"  # generation profile: full (pipelines as written) or quick (CPU-sized teachers)

    def merged(self, **overrides: Any) -> GenerateSettings:
        """A copy with every override that is not ``None`` applied (command-line flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def load_settings(path: Path | None, env: dict[str, str] | None = None) -> GenerateSettings:
    """``[generate]`` of ``path`` (may be ``None`` or missing), then ``LABRADOR_TEACHER`` on top.

    Relative ``out``, ``recipe`` and ``tokenizer`` paths are resolved against the file's folder, so a
    setting means the same thing whatever folder the command runs from.
    """
    env = os.environ if env is None else env
    try:
        values = section_values(path, SECTION, GenerateSettings(), paths=("out", "recipe", "tokenizer"))
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None
    if env.get(TEACHER_ENV, "").strip():
        values["teacher"] = env[TEACHER_ENV].strip()
    settings = GenerateSettings(**values)
    if settings.max_concurrency < 1:
        raise SettingsError(f"[{SECTION}] max_concurrency must be at least 1")
    if settings.profile not in PROFILES:
        raise SettingsError(f"{path}: [{SECTION}] profile must be one of {', '.join(PROFILES)}, "
                            f"got {settings.profile!r}")
    return settings


def teacher_options(spec: str, settings: GenerateSettings) -> dict[str, Any]:
    """Backend options for ``make_teacher``: only the ones that backend understands."""
    spec = spec.strip()
    if spec.startswith(("http://", "https://", "openai:")):
        opts: dict[str, Any] = {"max_concurrency": settings.max_concurrency}
        if settings.model:
            opts["model"] = settings.model
        if settings.api_key_env:
            opts["api_key_env"] = settings.api_key_env
        if settings.tokenizer:
            opts["tokenizer_path"] = settings.tokenizer
        return opts
    return {"batch_size": settings.max_concurrency}  # local backends: one batch is the concurrency


def build_teacher(settings: GenerateSettings) -> Teacher:
    """The configured teacher; ``replay:FILE`` answers from a recording (tests, demos, no model needed)."""
    if not settings.teacher:
        raise SettingsError(HOW_TO_CONFIGURE)
    spec = settings.teacher.strip()
    if spec.startswith("replay:"):
        from .sdg.replay import ReplayTeacher

        file = Path(spec.removeprefix("replay:")).expanduser()
        if not file.is_file():
            raise SettingsError(f"replay teacher: recording {file} does not exist")
        return ReplayTeacher.from_file(file, max_concurrency=settings.max_concurrency)
    return make_teacher(spec, **teacher_options(spec, settings))
