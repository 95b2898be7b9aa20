"""Content-addressed leaf outputs: same inputs, same key, no teacher call at all.

The key covers everything that can change a sample: leaf bytes, documents, prompt files,
pipeline file, teacher identity, generation limits, run seed and the engine's format version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ENGINE_VERSION = "1"  # bump when parsing/format changes alter samples for the same inputs


def leaf_key(*, relpath: str, leaf_bytes: bytes, documents: Iterable[tuple[str, bytes]],
             prompts: dict[str, bytes], pipeline: bytes, teacher: str, params: dict[str, Any], seed: int) -> str:
    """sha256 over length-prefixed, named parts (so no two different inputs can collide by concatenation)."""
    h = hashlib.sha256()

    def part(name: str, data: bytes) -> None:
        label = name.encode("utf-8")
        h.update(len(label).to_bytes(8, "big") + label + len(data).to_bytes(8, "big") + data)

    part("engine", ENGINE_VERSION.encode())
    part("leaf-path", relpath.encode("utf-8"))
    part("leaf", leaf_bytes)
    for path, data in sorted(documents):
        part(f"document:{path}", data)
    for name in sorted(prompts):
        part(f"prompt:{name}", prompts[name])
    part("pipeline", pipeline)
    part("teacher", teacher.encode("utf-8"))
    part("params", json.dumps(params, sort_keys=True, separators=(",", ":")).encode())
    part("seed", str(seed).encode())
    return h.hexdigest()


def leaf_dir(out_dir: Path, folder: str, key: str) -> Path:
    """``OUT/leaves/<leaf folder>/<key>/``: one folder per input version, so old ones stay readable."""
    return out_dir / "leaves" / folder / key


def checkpoint_path(out_dir: Path, key: str) -> Path:
    return out_dir / ".checkpoints" / f"{key}.jsonl"


def read_complete(folder: Path) -> dict[str, Any] | None:
    """The manifest if the folder holds a finished leaf (manifest says complete and samples match it)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
        samples = (folder / "samples.jsonl").read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("complete") is not True:
        return None
    if manifest.get("samples_sha256") != hashlib.sha256(samples).hexdigest():
        return None
    return manifest
