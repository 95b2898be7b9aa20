"""Which teacher a project uses: ``[teacher]`` in labrador.toml, read by one loader and built by one function.

Why one place: ``labrador generate``, the nightly job, ``labrador check --preview``, the bot's ``/lab preview``
(and the judge of an evaluation) must agree on the teacher and on how hard they may hit it. Precedence, highest
first: command-line flags, the environment variable ``LABRADOR_TEACHER`` (the spec only), ``[teacher]``, the
defaults. Secrets never live here: only the *name* of the environment variable that holds an API key.

Core-only on purpose (stdlib + the settings loader): ``labrador check`` reads it on installs without the
``[sdg]`` extra, to say how to configure a teacher.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from labrador.validators.settings import ConfigError, read_toml, section_values

from .backends import EMBEDDED, HTTP, REPLAY, backend_of, folder_of
from .base import Teacher

SECTION = "teacher"
TEACHER_ENV = "LABRADOR_TEACHER"
HOW_TO_CONFIGURE = (
    f"no teacher configured: set `spec = \"http://HOST:PORT/v1\"` (or \"embedded\") under [{SECTION}] in "
    f"labrador.toml, or the environment variable {TEACHER_ENV}"
)
if TYPE_CHECKING:  # the bounded types of these keys (read by validators.settings)
    from labrador.validators.typed import Concurrency, Deadline, InFlight, Seconds, Text


class TeacherConfigError(ConfigError, ValueError):
    """A ``[teacher]`` section (or flag) that cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class TeacherSettings:
    """``[teacher]``: everything needed to build the teacher. ``None``: not set anywhere."""

    # http(s)://HOST:PORT/v1[#MODEL], vllm:PATH, a model folder, embedded, replay:FILE; or a tuple of several
    # http(s) endpoints of one model (a pool; a string is never split: a path may hold spaces)
    spec: Text | None = None  # (a TOML list of endpoints is read by join_endpoints; held as a tuple)
    model: Text | None = None  # model id on the server (HTTP teacher); default: discovered
    api_key_env: Text | None = None  # NAME of the variable holding the key (HTTP teacher)
    tokenizer: Text | None = None  # tokenizer.json / model folder for exact chunk sizes (HTTP teacher)
    max_concurrency: InFlight = 8  # requests in flight to the teacher, across all leaves (local: the batch size)
    profile: Literal["auto", "full", "quick"] = "auto"  # full, quick (CPU-sized teachers), auto (quick for embedded)
    structured: Literal["auto", "off"] = "auto"  # auto: requests carry their reply schema where the prompt has one
    judges: Literal["auto", "on", "off"] = "auto"  # auto: the profile's choice (off under quick, on under full)
    endpoint_concurrency: Concurrency = 0  # several endpoints: requests in flight to each (0: max_concurrency)
    endpoint_backoff_s: Seconds = 30.0  # several endpoints: how long one that keeps failing is left out
    request_timeout_s: Deadline = 120.0  # HTTP: the most one attempt may take, every byte of the answer included

    @property
    def profile_name(self) -> str:
        """The profile in force: ``auto`` is ``quick`` for the embedded CPU teacher and ``full`` otherwise."""
        if self.profile != "auto":
            return self.profile
        return "quick" if isinstance(self.spec, str) and backend_of(self.spec) is EMBEDDED else "full"

    @property
    def label(self) -> str:
        """The spec as people read it (a pool's endpoints joined with commas)."""
        return ", ".join(self.spec) if isinstance(self.spec, tuple) else str(self.spec or "")

    @property
    def structured_on(self) -> bool:
        return self.structured != "off"

    @property
    def judges_on(self) -> bool | None:
        """True/False when set; ``None`` leaves it to the profile."""
        return None if self.judges == "auto" else self.judges == "on"

    def merged(self, **overrides: Any) -> TeacherSettings:
        """A copy with every override that is not ``None`` applied (command-line flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def load_teacher(path: Path | None, env: Mapping[str, str] | None = None, **flags: Any) -> TeacherSettings:
    """The teacher settings in force: ``[teacher]`` of ``path`` (may be ``None`` or missing), then
    ``LABRADOR_TEACHER``, then ``flags`` (``None`` values are unset).

    Relative ``tokenizer`` (and model folder) paths are resolved against the file's folder, so a setting means
    the same thing whatever folder the command runs from.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if path is not None and Path(path).is_file():
        raw = read_toml(Path(path)).get(SECTION)
        listed = raw.get("spec") if isinstance(raw, dict) and isinstance(raw.get("spec"), list) else None
        values = section_values(path, SECTION, TeacherSettings(), paths=("tokenizer",),
                                legacy=("spec",) if listed is not None else ())
        if listed is not None:  # several endpoints of one model: one pooled teacher
            values["spec"] = join_endpoints(listed, f"{path}: [{SECTION}] spec")
        spec = values.get("spec")
        folder = folder_of(spec) if isinstance(spec, str) and spec else None
        if folder is not None and not folder.is_absolute() and (Path(path).parent / folder).is_dir():
            values["spec"] = str((Path(path).parent / folder).resolve())  # a model folder beside the file
    if env.get(TEACHER_ENV, "").strip():
        values["spec"] = env[TEACHER_ENV].strip()
    return TeacherSettings(**values).merged(**flags)  # the file's values are typed (above); flags by argparse


def join_endpoints(urls: Any, where: str = "--teacher") -> str | tuple[str, ...]:
    """Several ``http(s)://`` endpoints (a TOML list, repeated ``--teacher``) as one spec: a tuple of the URLs,
    which :func:`~labrador.trainer.teachers.make_teacher` builds into one pooled teacher (one URL: that string)."""
    if not isinstance(urls, list | tuple) or not urls or not all(isinstance(u, str) and u.strip() for u in urls):
        raise TeacherConfigError(f"{where}: a list of endpoints must hold non-empty strings")
    urls = [u.strip() for u in urls]
    if len(urls) > 1 and not all(backend_of(u) is HTTP for u in urls):
        raise TeacherConfigError(f"{where}: several teachers can only be http(s):// endpoints of one model (got "
                                 f"{', '.join(u for u in urls if backend_of(u) is not HTTP)})")
    return tuple(urls) if len(urls) > 1 else urls[0]


def teacher_options(spec: str | tuple[str, ...], settings: TeacherSettings) -> dict[str, Any]:
    """Backend options for ``make_teacher``: only the ones that backend understands."""
    pool = isinstance(spec, tuple)
    backend = backend_of(spec)
    if backend is REPLAY:
        return {"max_concurrency": settings.max_concurrency}
    if backend is HTTP:
        opts: dict[str, Any] = {"max_concurrency": settings.max_concurrency}
        if pool:
            opts.update(per_endpoint=settings.endpoint_concurrency, backoff_s=settings.endpoint_backoff_s)
        opts["timeout_s"] = settings.request_timeout_s
        if settings.model:
            opts["model"] = settings.model
        if settings.api_key_env:
            opts["api_key_env"] = settings.api_key_env
        if settings.tokenizer:
            opts["tokenizer_path"] = settings.tokenizer
        return opts
    return {"batch_size": settings.max_concurrency}  # local backends: one batch is the concurrency


def build_teacher(settings: TeacherSettings) -> Teacher:
    """The one place a teacher is built from settings (``make_teacher`` picks the backend for the spec)."""
    if not settings.spec:
        raise TeacherConfigError(HOW_TO_CONFIGURE)
    from . import make_teacher

    spec = settings.spec if isinstance(settings.spec, tuple) else settings.spec.strip()
    return make_teacher(spec, **teacher_options(spec, settings))
