"""Pipelines are data: ``pipelines/<kind>.yaml`` is a short list of steps, checked at load time.

A taxonomy repository may replace one with ``sdg/pipelines/<kind>.yaml``; its bytes go into the
leaf cache key like a prompt's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .prompting import PromptError
from .steps import REGISTRY

BUILTIN_DIR = Path(__file__).parent / "pipelines"
KINDS = ("freeform", "grounded", "knowledge")


@dataclass(frozen=True)
class Pipeline:
    """A named, versioned list of step configurations."""

    name: str
    version: int
    steps: tuple[dict[str, Any], ...]
    source: bytes = b""

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def prompt_names(self) -> list[str]:
        return sorted({s["prompt"] for s in self.steps if "prompt" in s})


def step_label(index: int, step: dict[str, Any]) -> str:
    """A human name for a step, e.g. ``3:judge:freeform_question_judge``."""
    extra = step.get("name") or step.get("prompt") or step.get("field")
    return f"{index}:{step['type']}" + (f":{extra}" if extra else "")


def load_pipeline(kind: str, override_dir: Path | None = None) -> Pipeline:
    if kind not in KINDS:
        raise PromptError(f"unknown pipeline {kind!r}; expected one of {KINDS}")
    path = BUILTIN_DIR / f"{kind}.yaml"
    if override_dir is not None and (override_dir / f"{kind}.yaml").is_file():
        path = override_dir / f"{kind}.yaml"
    source = path.read_bytes()
    try:
        raw = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise PromptError(f"{path}: not valid YAML: {exc}") from None
    return parse_pipeline(raw, source, str(path))


def parse_pipeline(raw: object, source: bytes = b"", where: str = "<pipeline>") -> Pipeline:
    """Validate a pipeline mapping: known step types, known keys, ``format`` last."""
    if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list) or not raw["steps"]:
        raise PromptError(f"{where}: a pipeline is a mapping with name, version and a non-empty steps list")
    steps = []
    for i, step in enumerate(raw["steps"]):
        if not isinstance(step, dict) or step.get("type") not in REGISTRY:
            raise PromptError(f"{where}: step {i} needs a type, one of {sorted(REGISTRY)}")
        kind = REGISTRY[step["type"]]
        missing, unknown = kind.required - step.keys(), step.keys() - kind.required - kind.optional
        if missing or unknown:
            raise PromptError(f"{where}: step {i} ({step['type']}): missing {sorted(missing)}, "
                              f"unknown {sorted(unknown)}")
        steps.append(dict(step))
    if steps[-1]["type"] != "format" or any(s["type"] == "format" for s in steps[:-1]):
        raise PromptError(f"{where}: the last step, and only it, must be a format step")
    try:
        return Pipeline(str(raw["name"]), int(raw.get("version", 1)), tuple(steps), source)
    except (KeyError, TypeError, ValueError) as exc:
        raise PromptError(f"{where}: bad name/version: {exc}") from None
