"""LAB synthetic data generation: taxonomy leaf + teacher -> judged, deduplicated training samples.

Prompts (``prompts/*.yaml``) and pipelines (``pipelines/*.yaml``) are data; step types live in
``steps/``; ``engine`` runs a pipeline for one leaf; ``checkpoint`` and ``cache`` make runs
resumable and incremental. Entry points: :func:`generate_leaf`, :func:`generate`,
:func:`preview_leaf`, with :func:`prepare_leaves` to check and read them first.
"""

import importlib
from typing import Any

# imported on first use (PEP 562): every `labrador` command loads `labrador generate`'s parser from
# ``sdg.cli``, and `labrador check` on a core install has none of the [sdg] extra these modules import
_WHERE = {"first_error": "api", "generate": "api", "generate_leaf": "api", "override_dirs": "api",
          "prepare_leaves": "api", "preview_leaf": "api", "ProgressEvent": "engine", "Limits": "limits",
          "summary_table": "output", "LeafInput": "results", "LeafResult": "results"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "LeafInput",
    "LeafResult",
    "Limits",
    "ProgressEvent",
    "first_error",
    "generate",
    "generate_leaf",
    "override_dirs",
    "prepare_leaves",
    "preview_leaf",
    "summary_table",
]
