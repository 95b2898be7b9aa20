"""Data mixing with replay (LAB multi-phase training): recipe (YAML) -> rows per phase.

``recipe`` parses and validates recipes, ``core`` is the pure seeded :func:`mix`, ``files`` is the I/O
edge that writes ``OUT/<phase>.jsonl`` and ``OUT/mix_manifest.json``. Format: ``trainer/recipes/README.md``.
"""

from .core import Mix, cap, mix, plan, scale
from .files import MANIFEST, load_replay_sources, missing_datasets, read_jsonl, write_mix
from .recipe import DEFAULT_RECIPE, Group, Phase, Recipe, RecipeError, Replay, glob_match, load_recipe, parse_recipe

__all__ = [
    "DEFAULT_RECIPE",
    "MANIFEST",
    "Group",
    "Mix",
    "Phase",
    "Recipe",
    "RecipeError",
    "Replay",
    "cap",
    "glob_match",
    "load_recipe",
    "load_replay_sources",
    "missing_datasets",
    "mix",
    "parse_recipe",
    "plan",
    "read_jsonl",
    "scale",
    "write_mix",
]
