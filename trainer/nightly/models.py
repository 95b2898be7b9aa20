"""Which model a night starts from: the configured base (a folder, a catalogue name pulled once, or a cut
derived and healed once) and the embedded distillation teacher, resolved to folders."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..models.catalogue import CATALOGUE
from .context import Night
from .data import NightError
from .settings import EMBEDDED


def base_model(night: Night) -> str:
    """The configured base model: a folder; a catalogue name (``smollm2-135m-instruct``, pulled once, as
    ``--teacher embedded`` is); or ``derive:NAME:LAYERS``, derived once from a catalogue model (and healed
    with ``heal_steps``)."""
    spec = night.settings.base_model
    if spec in CATALOGUE:
        from ..models.store import PullError, pull

        try:
            return str(pull(spec, say=night.say))
        except (PullError, OSError) as exc:
            raise NightError(f"base_model {spec}: {exc}") from None
    if not spec.startswith("derive:"):
        if not (Path(spec) / "config.json").is_file():
            raise NightError(f"base_model {spec} is not a Hugging Face model folder")
        return spec
    _, name, layers = spec.split(":", 2)
    from ..models.store import pull
    from ..students.derive import derive_student, layers_of

    if night.settings.heal_steps:  # cached in the models cache: every state folder shares one heal
        from ..students.heal import HealSettings, heal_student

        source = pull(name)
        picked = layers_of(source, layers)
        night.say(f"the base model: layers {layers} of {name}, healed by distillation "
                  f"({night.settings.heal_steps} steps, once)")
        return str(heal_student(source, picked, replace(HealSettings(), steps=night.settings.heal_steps),
                                progress=True, say=night.say))
    out = night.state / "base" / f"{name}-{layers.replace(',', '_')}"
    if not (out / "config.json").is_file():
        source = pull(name)
        night.say(f"deriving the base model: layers {layers} of {name}")
        derive_student(source, layers_of(source, layers), out)
    return str(out)


def embedded_distill_teacher(config: Any) -> Any:
    """``teacher_model = "embedded"`` (the quick night's) as the embedded model's folder, pulled once."""
    if config.distill is None or config.distill.teacher_model != EMBEDDED:
        return config
    from ..teachers.backends import embedded_folder

    return replace(config, distill=replace(config.distill, teacher_model=embedded_folder()))
