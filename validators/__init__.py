"""Labrador's taxonomy checker: one verdict for contributors, CI, the bot and the trainer.

``check_file(relpath, data)`` is pure and fast; walking a tree, reading attribution files,
resolving documents and change detection are separate steps (see ``tree``, ``documents``,
``changes``).
"""

from .config import Config, load_config
from .findings import Finding, Report
from .leaf import check_file

__all__ = ["Config", "Finding", "Report", "check_file", "load_config"]
