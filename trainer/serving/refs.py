"""One way to name a model on the command line: ``latest`` (the newest promoted night), a night id
(``night-0003``), a catalogue name (``smollm2-135m-instruct``, pulled once) or a model folder. Anything else is
one line that says what exists."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..models.catalogue import CATALOGUE
from ..nightly.registry import Registry, RegistryError

LATEST = "latest"
_NIGHT = re.compile(r"^night-\d{4,}$")


class ModelRefError(ValueError):
    """A model reference that names nothing; the message lists what does exist."""


@dataclass(frozen=True)
class ModelRef:
    folder: Path
    name: str  # what people call it: the night id, the catalogue name or the folder's name


def resolve_model(ref: str | None, state_dir: Path) -> ModelRef:
    """The model folder ``ref`` names (``None``: ``latest``), checked loadable without loading it."""
    ref = (ref or LATEST).strip()
    if ref == LATEST or _NIGHT.match(ref):
        return _night(ref, state_dir)
    if ref in CATALOGUE:
        from ..models.store import PullError, pull

        try:
            return ModelRef(Path(pull(ref)), ref)
        except (PullError, OSError) as exc:
            raise ModelRefError(f"{ref}: cannot pull it: {exc}") from None
    folder = Path(ref).expanduser()
    if folder.is_dir():
        return ModelRef(_checked(folder, ref), folder.resolve().name)
    raise ModelRefError(f"no model {ref!r}: {_what_exists(state_dir)}")


def _night(ref: str, state_dir: Path) -> ModelRef:
    runs = _runs(state_dir)
    if ref == LATEST:
        run = next((r for r in runs if r["status"] == "promoted" and r.get("model")), None)
        if run is None:
            raise ModelRefError(f"no promoted night in {state_dir} yet (run `labrador nightly`); "
                                f"{_what_exists(state_dir)}")
    else:
        run = next((r for r in runs if r["id"] == ref), None)
        if run is None or not run.get("model"):
            raise ModelRefError(f"{ref} {'made no model' if run else 'is not a night'} in {state_dir}; "
                                f"{_what_exists(state_dir)}")
    return ModelRef(_checked(Path(run["model"]), run["id"]), run["id"])


def _checked(folder: Path, ref: str) -> Path:
    from ..train.config import TrainConfigError, check_model_folder

    try:
        check_model_folder(folder, ref)
    except TrainConfigError as exc:
        raise ModelRefError(str(exc)) from None
    return folder.resolve()


def _runs(state_dir: Path) -> list[dict]:
    db = Path(state_dir) / "registry.db"
    if not db.is_file():
        return []
    try:
        return Registry(db).runs()
    except RegistryError as exc:
        raise ModelRefError(str(exc)) from None


def _what_exists(state_dir: Path) -> str:
    nights = [r["id"] for r in _runs(state_dir) if r["status"] == "promoted" and r.get("model")]
    shown = ", ".join(nights[:5]) + (f" and {len(nights) - 5} more" if len(nights) > 5 else "")
    return (f"promoted nights: {shown or 'none'}; catalogue: {', '.join(sorted(CATALOGUE))}; or the path of a "
            "model folder")
