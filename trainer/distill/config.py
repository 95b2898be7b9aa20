"""The ``distill:`` block of a training config: checked before any weights load, like the rest.

Exactly one source of teacher targets: ``teacher`` (online, loaded frozen beside the student),
``teacher_cache`` (offline top-k written by ``labrador distill cache``; ``teacher`` may stay set, it is
then only used to build the cache), or ``dae`` (an expert for domain samples, a reference for the rest).
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.train.config import TrainConfig, TrainConfigError


@dataclass(frozen=True)
class DAEConfig:
    expert: str
    reference: str
    domain: tuple[str, ...] = ()  # globs on the sample's `leaf`
    domain_field: str = ""  # or: a sample field whose truthy value ("true", "1", "yes") marks a domain sample

    def is_domain(self, meta: dict[str, str]) -> bool:
        if self.domain_field:
            return str(meta.get(self.domain_field, "")).lower() in ("1", "true", "yes")
        leaf = meta.get("leaf", "")
        return any(fnmatch.fnmatchcase(leaf, g) or fnmatch.fnmatchcase(leaf + "/", g) for g in self.domain)


@dataclass(frozen=True)
class DistillConfig:
    teacher: str = ""
    teacher_cache: str = ""
    lam: float = 0.5
    temperature: float = 1.0
    prediction: float = 1.0
    attention: float = 0.0
    dae: DAEConfig | None = None

    @property
    def offline(self) -> bool:
        return bool(self.teacher_cache) and self.dae is None

    def models(self) -> list[str]:
        """The teacher folders training loads (none when offline)."""
        if self.dae is not None:
            return [self.dae.expert, self.dae.reference]
        return [] if self.offline else [self.teacher]


_KEYS = {"teacher", "teacher_cache", "lambda", "temperature", "prediction", "attention", "dae"}
_DAE_KEYS = {"expert", "reference", "domain", "domain_field"}


def _unknown(source: str, where: str, key: str, known: set[str]) -> TrainConfigError:
    guess = difflib.get_close_matches(key, sorted(known), n=1)
    fix = f"did you mean '{guess[0]}'?" if guess else f"known keys: {', '.join(sorted(known))}"
    return TrainConfigError(f"{source}: {where}{key}: unknown key — {fix}")


def _number(source: str, where: str, value: Any, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TrainConfigError(f"{source}: {where}: expected a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise TrainConfigError(f"{source}: {where}: must be {bound}, got {value}")
    return float(value)


def _path(source: str, where: str, value: Any, base: Path) -> str:
    if not isinstance(value, str) or not value:
        raise TrainConfigError(f"{source}: {where}: expected a path, got {value!r}")
    return str(base / value) if not Path(value).is_absolute() else value


def parse_distill(config: TrainConfig) -> DistillConfig | None:
    """Validate ``config.distill`` (relative paths against the config file's folder)."""
    raw = config.distill
    if raw is None:
        return None
    source = config.source
    base = Path(source).resolve().parent if source and Path(source).exists() else Path.cwd()
    for key in raw:
        if key not in _KEYS:
            raise _unknown(source, "distill.", str(key), _KEYS)
    out: dict[str, Any] = {}
    for key in ("teacher", "teacher_cache"):
        if key in raw:
            out[key] = _path(source, f"distill.{key}", raw[key], base)
    if "lambda" in raw:
        out["lam"] = _number(source, "distill.lambda", raw["lambda"], 0.0, 1.0)
    if "temperature" in raw:
        out["temperature"] = _number(source, "distill.temperature", raw["temperature"], 1e-3)
        if out["temperature"] <= 0:
            raise TrainConfigError(f"{source}: distill.temperature: must be above 0")
    for key in ("prediction", "attention"):
        if key in raw:
            out[key] = _number(source, f"distill.{key}", raw[key], 0.0)
    if "dae" in raw:
        d = raw["dae"]
        if not isinstance(d, dict):
            raise TrainConfigError(f"{source}: distill.dae: expected a mapping (expert:, reference:, domain:)")
        for key in d:
            if key not in _DAE_KEYS:
                raise _unknown(source, "distill.dae.", str(key), _DAE_KEYS)
        for key in ("expert", "reference"):
            if key not in d:
                raise TrainConfigError(f"{source}: distill.dae.{key}: required key is missing")
        domain = d.get("domain", [])
        if isinstance(domain, str):
            domain = [domain]
        if not isinstance(domain, list) or not all(isinstance(g, str) and g for g in domain):
            raise TrainConfigError(f"{source}: distill.dae.domain: expected a list of globs on the sample's leaf")
        field = d.get("domain_field", "")
        if not isinstance(field, str):
            raise TrainConfigError(f"{source}: distill.dae.domain_field: expected a field name")
        if not domain and not field:
            raise TrainConfigError(f"{source}: distill.dae: say which samples are the domain's: `domain` (globs "
                                   "on the sample's leaf) or `domain_field`")
        out["dae"] = DAEConfig(_path(source, "distill.dae.expert", d["expert"], base),
                               _path(source, "distill.dae.reference", d["reference"], base), tuple(domain), field)
    dc = DistillConfig(**out)
    sources = sum([bool(dc.teacher or dc.teacher_cache), dc.dae is not None])
    if sources != 1:
        raise TrainConfigError(f"{source}: distill: give exactly one of `teacher` (or `teacher_cache`) and `dae`")
    if dc.attention > 0 and (dc.offline or dc.dae is not None):
        raise TrainConfigError(f"{source}: distill.attention: needs an online `teacher` (attention maps are not "
                               "cached, and DAE distils predictions only)")
    if dc.attention > 0 and config.attn_implementation not in ("auto", "eager"):
        raise TrainConfigError(f"{source}: distill.attention needs eager attention (full maps); set "
                               "attn_implementation: eager or auto")
    return dc


def check_distill(config: TrainConfig, dc: DistillConfig, *, building_cache: bool = False) -> None:
    """Paths exist and every teacher shares the student's tokenizer, before any weights load."""
    models = [dc.teacher] if building_cache else dc.models()
    if building_cache and not dc.teacher:
        raise TrainConfigError(f"{config.source}: distill.teacher: `labrador distill cache` needs the teacher")
    for m in models:
        if not (Path(m) / "config.json").is_file():
            raise TrainConfigError(f"{config.source}: distill: teacher model {m} is not a Hugging Face model folder")
        same_tokenizer(config.model, m)
    if dc.offline and not building_cache and not (Path(dc.teacher_cache) / "shards").is_dir():
        raise TrainConfigError(f"{config.source}: distill.teacher_cache: {dc.teacher_cache} holds no cache; build it "
                               f"first with `labrador distill cache --config {config.source}`")


def same_tokenizer(student: str, teacher: str) -> None:
    """Teacher and student must share a vocabulary and special tokens: distributions are compared id by id."""
    from transformers import AutoTokenizer

    try:
        s, t = AutoTokenizer.from_pretrained(student), AutoTokenizer.from_pretrained(teacher)
    except (OSError, ValueError) as exc:
        raise TrainConfigError(f"distill: cannot load a tokenizer: {exc}") from None
    problems = []
    if s.get_vocab() != t.get_vocab():
        problems.append(f"vocabularies differ ({len(s)} vs {len(t)} tokens)")
    if sorted(s.all_special_tokens) != sorted(t.all_special_tokens):
        problems.append(f"special tokens differ ({json.dumps(s.all_special_tokens)} vs "
                        f"{json.dumps(t.all_special_tokens)})")
    if problems:
        raise TrainConfigError(f"distill: the student {student} and the teacher {teacher} do not share a tokenizer: "
                               f"{'; '.join(problems)}. Distillation compares distributions token id by token id; "
                               "use a teacher of the same family (or derive the student from it)")
