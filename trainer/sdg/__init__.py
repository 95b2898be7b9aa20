"""LAB synthetic data generation: taxonomy leaf + teacher -> judged, deduplicated training samples.

Prompts (``prompts/*.yaml``) and pipelines (``pipelines/*.yaml``) are data; step types live in
``steps/``; ``engine`` runs a pipeline for one leaf; ``checkpoint`` and ``cache`` make runs
resumable and incremental. Entry points: :func:`generate_leaf`, :func:`generate`,
:func:`preview_leaf`.
"""

from .api import generate, generate_leaf, override_dirs, preview_leaf
from .engine import Limits, ProgressEvent
from .output import summary_table
from .replay import ReplayTeacher
from .results import LeafInput, LeafResult

__all__ = [
    "LeafInput",
    "LeafResult",
    "Limits",
    "ProgressEvent",
    "ReplayTeacher",
    "generate",
    "generate_leaf",
    "override_dirs",
    "preview_leaf",
    "summary_table",
]
