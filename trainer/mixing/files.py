"""The I/O edge of mixing: read precomputed replay sets, write ``OUT/<phase>.jsonl`` and the manifest.

Writes are atomic (temp file + rename), so a crash or a concurrent reader never sees half a phase file,
and the manifest is written last: a manifest on disk means the phase files beside it are whole.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labrador.trainer import jsonl
from labrador.validators.atomic import atomic_write

from .core import Mix, Row, plan
from .recipe import Recipe, RecipeError

MANIFEST = "mix_manifest.json"


def read_jsonl(path: Path) -> list[Row]:
    """Rows of a JSON Lines file; a line that is not a JSON object is an error naming file and line."""
    return jsonl.read_jsonl(path, RecipeError)


def dataset_path(recipe: Recipe, dataset: str) -> Path:
    """A recipe's dataset path; relative paths are relative to the recipe file's folder."""
    path = Path(dataset).expanduser()
    if path.is_absolute() or recipe.source.startswith("<"):
        return path
    return Path(recipe.source).resolve().parent / path


def missing_datasets(recipe: Recipe) -> list[str]:
    """Optional datasets that are absent; raises :class:`RecipeError` for a required one."""
    missing = []
    for spec in (r for phase in recipe.phases for r in phase.replay if r.dataset is not None):
        path = dataset_path(recipe, spec.dataset)
        if not path.is_file():
            if not spec.optional:
                raise RecipeError(f"{recipe.source}: replay dataset {path} does not exist (mark it 'optional: true' "
                                  "to mix without it)")
            missing.append(spec.dataset)
    return missing


def load_replay_sources(recipe: Recipe) -> tuple[dict[str, list[Row]], list[str]]:
    """Rows of every ``dataset`` the recipe names; a missing file is an error unless ``optional: true``
    (then it is returned in the second list, and recorded in the manifest)."""
    skipped = missing_datasets(recipe)
    sources: dict[str, list[Row]] = {}
    for spec in (r for phase in recipe.phases for r in phase.replay if r.dataset is not None):
        if spec.dataset not in sources and spec.dataset not in skipped:
            sources[spec.dataset] = read_jsonl(dataset_path(recipe, spec.dataset))
    return sources, sorted(set(skipped))


def write_mix(out_dir: Path, recipe: Recipe, samples_by_leaf: Mapping[str, Sequence[Row]], seed: int = 0,
              extra: Mapping[str, Any] | None = None) -> Mix:
    """Mix and write ``OUT/<phase>.jsonl`` for every phase, then ``OUT/mix_manifest.json``."""
    sources, skipped = load_replay_sources(recipe)
    result = plan(recipe, samples_by_leaf, sources, seed)
    files: dict[str, Any] = {}
    for name, rows in result.phases.items():
        data = jsonl.samples_bytes(rows)
        atomic_write(out_dir / f"{name}.jsonl", data)
        files[name] = {"file": f"{name}.jsonl", "rows": len(rows), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {**result.manifest, **(extra or {}), "files": files, "optional_datasets_missing": skipped,
                "available": {leaf: len(rows) for leaf, rows in sorted(samples_by_leaf.items())}}
    result.manifest = manifest
    atomic_write(out_dir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
    return result
