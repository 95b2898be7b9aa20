"""Pipelines are data: ``pipelines/<kind>.yaml`` is a short list of steps, checked at load time.

A taxonomy repository may replace one with ``sdg/pipelines/<kind>.yaml``; its bytes go into the
leaf cache key like a prompt's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import Field

from labrador.validators.typed import FORBID_EXTRA, Invalid, Name, Positive, Text, validate

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


@dataclass(frozen=True)
class PipelineFile:
    """A pipeline YAML file as written; each step's keys are those its step type declares (``steps.register``)."""

    __pydantic_config__: ClassVar = FORBID_EXTRA
    name: Name
    steps: Annotated[tuple[dict[str, Any], ...], Field(min_length=1)]
    version: Positive = 1
    description: Text = ""

    def __post_init__(self) -> None:
        for i, step in enumerate(self.steps):
            if step.get("type") not in REGISTRY:
                raise Invalid(f"steps[{i}].type", f"needs a type, one of {sorted(REGISTRY)}; got {step.get('type')!r}")
            kind = REGISTRY[step["type"]]
            missing, unknown = kind.required - step.keys(), step.keys() - kind.required - kind.optional
            if missing or unknown:
                raise Invalid(f"steps[{i}]", f"a {step['type']} step: missing {sorted(missing)}, unknown "
                              f"{sorted(unknown)}")
            for key, value in step.items():
                if (why := kind.problem(key, value)) is not None:
                    raise Invalid(f"steps[{i}].{key}", why)
        if self.steps[-1]["type"] != "format" or any(s["type"] == "format" for s in self.steps[:-1]):
            raise Invalid("steps", "the last step, and only it, must be a format step")


def parse_pipeline(raw: object, source: bytes = b"", where: str = "<pipeline>") -> Pipeline:
    """Validate a pipeline mapping: known step types, known keys, ``format`` last."""
    f = validate(PipelineFile, raw, where, error=PromptError)
    return Pipeline(f.name, f.version, tuple(dict(s) for s in f.steps), source)
