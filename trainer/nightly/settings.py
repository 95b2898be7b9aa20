"""``[nightly]`` of labrador.toml, through the one settings loader; ``--quick`` fills in the embedded defaults."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from validators.settings import ConfigError, section_values

from ..train.config import TrainConfig, TrainConfigError, parse_config

SECTION = "nightly"


@dataclass(frozen=True)
class NightlySettings:
    base_model: str = ""  # HF folder the first night starts from (--quick: a student derived from the embedded model)
    start_from: str = "promoted"  # promoted: on top of the last promoted model; base: always from base_model
    teacher: str = ""  # default: [generate]'s teacher (--quick: embedded)
    profile: str = ""  # generation profile; default: [generate]'s (--quick: quick)
    seed: int = 0
    replay_fraction: float = 1.0  # share of earlier nights' samples mixed into tonight's phase
    replay_max_per_leaf: int = 30  # cap per earlier leaf (0: no cap)
    heldout_fraction: float = 0.1
    epochs: int = 1
    lr: float = 5.0e-5
    effective_batch: int = 16
    warmup_steps: int = 2
    max_steps: int = 0
    max_seq_len: int = 1024
    max_tokens_per_batch: int = 4096
    distill_teacher: str = ""  # a teacher folder for online distillation while training (off when empty)
    distill_lambda: float = 0.5
    gate_max_forgetting: float = 0.25  # an earlier night's held-out loss may rise at most this much (nats/token)
    gate_require_improvement: bool = True  # tonight's held-out loss must beat the parent model's
    gate_promote_unmeasured: bool = False  # promote a night whose loss could not be measured at all (no data)
    keep_checkpoints: int = 1
    include_seeds: bool = False  # also train on the changed leaves' own seed examples (marked origin "seed")

    @classmethod
    def quick(cls) -> NightlySettings:
        """The embedded defaults: a CPU night in minutes (embedded teacher, quick profile, a 2-layer student)."""
        return cls(base_model="derive:smollm2-135m-instruct:0,29", teacher="embedded", profile="quick", epochs=4,
                   lr=1.0e-4, effective_batch=8, max_seq_len=512, max_tokens_per_batch=2048,
                   gate_max_forgetting=0.5, include_seeds=True)


    def train_config(self, model: str, output_dir: Path, data: Path, source: str = "[nightly]") -> TrainConfig:
        """Tonight's one-phase training config, checked by the trainer's own rules (finite numbers, ranges)."""
        raw: dict[str, Any] = {
            "model": model, "output_dir": str(output_dir), "seed": self.seed, "max_seq_len": self.max_seq_len,
            "max_tokens_per_batch": self.max_tokens_per_batch, "heldout_fraction": self.heldout_fraction,
            "save_every_steps": 2, "keep_checkpoints": self.keep_checkpoints, "min_sample_tokens": 8,
            "phases": [{"name": "night", "data": str(data), "epochs": self.epochs,
                        "effective_batch": self.effective_batch, "lr": self.lr, "warmup_steps": self.warmup_steps,
                        "max_steps": self.max_steps}],
        }
        if self.distill_teacher:
            raw["distill"] = {"teacher": self.distill_teacher, "lambda": self.distill_lambda}
        return parse_config(raw, source=source)


def load_nightly(path: Path | None, quick: bool = False) -> NightlySettings:
    """``[nightly]`` of ``path`` over the defaults (the embedded ones with ``quick``)."""
    base = NightlySettings.quick() if quick else NightlySettings()
    values = section_values(path, SECTION, base, paths=("distill_teacher",))
    if values.get("base_model") and not values["base_model"].startswith("derive:") and path is not None:
        bm = Path(values["base_model"]).expanduser()
        values["base_model"] = str(bm if bm.is_absolute() else (Path(path).parent / bm).resolve())
    settings = replace(base, **values)
    if settings.start_from not in ("promoted", "base"):
        raise ConfigError(f"{path}: [{SECTION}] start_from must be promoted or base, got {settings.start_from!r}")
    if not 0 <= settings.heldout_fraction < 1:
        raise ConfigError(f"{path}: [{SECTION}] heldout_fraction must be in [0, 1)")
    try:  # the training values, by the trainer's rules, before any work
        settings.train_config("model", Path("out"), Path("data"), source=f"{path or 'labrador.toml'}: [{SECTION}]")
    except TrainConfigError as exc:
        raise ConfigError(str(exc).replace("phases[0].", "")) from None
    if not 0 <= settings.distill_lambda <= 1:
        raise ConfigError(f"{path}: [{SECTION}] distill_lambda must be in [0, 1]")
    if not settings.base_model:
        raise ConfigError(f"{path or 'labrador.toml'}: [{SECTION}] base_model is not set: name the model folder the "
                          "first night starts from (or run `labrador nightly --quick` for the embedded defaults)")
    return settings
