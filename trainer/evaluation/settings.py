"""``[evaluate]`` in labrador.toml: how the per-leaf evaluation answers and when a change counts.

Core-only (stdlib + the settings loader), like the other sections, so ``labrador check`` can read the file
without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labrador.validators.settings import section_values

SECTION = "evaluate"

if TYPE_CHECKING:  # the bounded types of these keys (read by validators.settings)
    from labrador.validators.typed import Concurrency, Few, InFlight, Number, Retries, ScoreDelta, Tokens


@dataclass(frozen=True)
class EvaluateSettings:
    max_new_tokens: Tokens = 256  # tokens each model may answer with (greedy)
    min_delta: ScoreDelta = 1.0  # a leaf improved / regressed when its mean score moved by at least this (1..10 scale)
    questions_per_leaf: Concurrency = 0  # seed questions asked per leaf (0: all of them)
    batch_size: InFlight = 8  # questions answered at once by a local model
    judge_retries: Retries = 2  # a judge reply that fails its schema is asked again (new seed) up to this many times
    holdout_seeds: Few = 1  # seed pairs per leaf no teacher, training set or replay ever sees (0: off)
    min_nll_delta: Number = 0.05  # without a judge: improved / regressed when ref_nll moved by this (nats/token)

    def merged(self, **overrides: Any) -> EvaluateSettings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


# `labrador nightly --quick`: a CPU night judges 2 seed questions per leaf with short answers (the embedded
# judge reads every answer: a 2-layer student's 256 tokens of noise cost it more than they tell), and asks a
# failed verdict again once (each retry is a sampled 64-token decode; the 135 M judge's failures are mostly
# runaway repetition that a second try rarely mends)
QUICK = EvaluateSettings(max_new_tokens=64, questions_per_leaf=2, judge_retries=1)


def load_evaluate(path: Path | None, *, quick: bool = False) -> EvaluateSettings:
    """``[evaluate]`` of ``path`` (``None`` or missing: the defaults; ``quick``: the quick night's), checked:
    bounds named with the key."""
    values = section_values(path, SECTION, EvaluateSettings())
    s = replace(QUICK if quick else EvaluateSettings(), **values)
    return s  # every bound is in the field types above
