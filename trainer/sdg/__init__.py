"""LAB synthetic data generation: taxonomy leaf + teacher -> judged, deduplicated training samples.

Prompts (``prompts/*.yaml``) and pipelines (``pipelines/*.yaml``) are data; step types live in
``steps/``; ``engine`` runs a pipeline for one leaf; ``checkpoint`` and ``cache`` make runs
resumable and incremental. Entry points: :func:`generate_leaf`, :func:`generate`,
:func:`preview_leaf`, with :func:`prepare_leaves` to check and read them first.
"""

from .api import first_error, generate, generate_leaf, override_dirs, prepare_leaves, preview_leaf
from .engine import ProgressEvent
from .limits import Limits
from .output import summary_table
from .results import LeafInput, LeafResult

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
