"""Step types, registered by name. A new step type is one small module here plus one import line.

A step is ``async run(step_config, rows, ctx) -> rows``: it gets the previous step's rows and
the leaf's :class:`~labrador.trainer.sdg.steps.base.Context` (teacher access, counters, limits). The framework
(registry, ``register``, ``derive``) lives in ``base``, so step modules never import this package.
"""

from . import chunk, dedup, format_messages, generate, judge, seeds  # noqa: F401  (registration)
from .base import REGISTRY, Row, StepType, derive, register

__all__ = ["REGISTRY", "Row", "StepType", "derive", "register"]
