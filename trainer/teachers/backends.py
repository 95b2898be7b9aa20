"""Which backend a teacher spec names: the one table every reader of a spec consults (building the teacher, its
options, settings that resolve folders, the evaluation's model checks, the CLI's pooling of ``--teacher``).

Core-only (stdlib): ``[teacher]`` is read on installs without the ``[sdg]`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Backend:
    """One kind of teacher. ``folder``: the spec is a local model folder, checked as one before anything loads."""

    name: str
    prefixes: tuple[str, ...]
    folder: bool = False

    def strip(self, spec: str) -> str:
        """The spec without its prefix (what the backend is given)."""
        for prefix in self.prefixes:
            if spec.startswith(prefix) and prefix.endswith(":"):
                return spec.removeprefix(prefix)
        return spec


HTTP = Backend("http", ("http://", "https://"))
REPLAY = Backend("replay", ("replay:",))
VLLM = Backend("vllm", ("vllm:",))
EMBEDDED = Backend("embedded", ("embedded:",))  # and the bare word ``embedded``
FOLDER = Backend("transformers", ("transformers:",), folder=True)  # and any other spec: a model folder
BACKENDS = (HTTP, REPLAY, VLLM, EMBEDDED, FOLDER)


def backend_of(spec: str | tuple[str, ...]) -> Backend:
    """The backend ``spec`` names; a tuple is a pool of HTTP endpoints; anything unprefixed is a folder."""
    if isinstance(spec, tuple):
        return HTTP
    spec = spec.strip()
    if spec == "embedded":
        return EMBEDDED
    return next((b for b in BACKENDS if spec.startswith(b.prefixes)), FOLDER)


def folder_of(spec: str) -> Path | None:
    """The local folder a folder spec names (``transformers:PATH`` or a plain path), else ``None``."""
    backend = backend_of(spec)
    return Path(backend.strip(spec.strip())).expanduser() if backend.folder else None


def embedded_folder(spec: str = "embedded") -> str:
    """``embedded`` (or ``embedded:NAME``) as the folder of that catalogue model, pulled on first use: the one
    place the word is resolved (teachers, the night's distillation teacher)."""
    from labrador.trainer.models.catalogue import DEFAULT
    from labrador.trainer.models.store import pull

    return str(pull(spec.strip().partition(":")[2] or DEFAULT))
