"""``labrador train`` configuration: one YAML file, checked completely before any weights load.

Why strict: a typo in a training config (``learning_rate`` for ``lr``) silently trains with the default
for hours. Unknown keys and wrong types are errors that name the file, the key and the fix. This module
is torch-free so ``--dry-run`` and config errors stay fast.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

# upstream's (instructlab/training) phase defaults; ours are per phase and overridable
DEFAULT_BETAS = (0.9, 0.95)


class TrainConfigError(ValueError):
    """A config that cannot be used; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class PhaseConfig:
    """One training phase (LAB: phase1 knowledge, phase2 skills with replay)."""

    name: str
    data: str
    epochs: int = 1
    max_steps: int = 0  # 0: no limit
    effective_batch: int = 128  # samples per optimizer step
    lr: float = 2.0e-5
    warmup_steps: int = 25
    betas: tuple[float, float] = DEFAULT_BETAS
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    unmask: bool = False  # train on every non-system token of every sample (else only samples marked "unmask")
    heldout_fraction: float | None = None  # None: the run's heldout_fraction


@dataclass(frozen=True)
class TrainConfig:
    model: str
    output_dir: str
    phases: tuple[PhaseConfig, ...]
    seed: int = 0
    max_seq_len: int = 2048  # longer samples are counted and skipped, never truncated
    min_sample_tokens: int = 20  # shorter samples are broken generations (upstream's rule): dropped, counted
    max_tokens_per_batch: int = 16384  # tokens in one micro-batch on one device
    packing: bool = True
    heldout_fraction: float = 0.05
    save_every_steps: int = 0  # 0: only at the end of each phase
    keep_checkpoints: int = 2  # resumable checkpoints kept (the newest N)
    dtype: str = "auto"  # auto: bf16 on a GPU that has it, fp32 on CPU; or float32 / bfloat16
    save_dtype: str = "auto"  # auto: the training dtype (bf16 weights are never saved as fp32 on GPU)
    attn_implementation: str = "auto"  # auto: flash_attention_2 on GPU where installed, else sdpa_varlen packed
    gradient_checkpointing: bool = False
    trackers: tuple[str, ...] = ()  # accelerate trackers: tensorboard, wandb, mlflow, trackio ...
    distill: dict[str, Any] | None = None
    source: str = ""  # the file this came from (for messages)

    def phase_dir(self, phase: str) -> Path:
        return Path(self.output_dir) / phase

    def heldout_for(self, phase: PhaseConfig) -> float:
        return self.heldout_fraction if phase.heldout_fraction is None else phase.heldout_fraction

    def fingerprint(self) -> str:
        """What must not change between a run and its ``--resume`` (everything that decides the weights)."""
        import hashlib

        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("source", "trackers")}
        d["phases"] = [{f.name: getattr(p, f.name) for f in fields(p)} for p in self.phases]
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


_DTYPES = ("auto", "float32", "bfloat16", "float16")
_ATTN = ("auto", "sdpa", "sdpa_varlen", "eager", "flash_attention_2", "flex_attention")


def _err(source: str, where: str, message: str) -> TrainConfigError:
    return TrainConfigError(f"{source}: {where}: {message}")


def _coerce(source: str, where: str, value: Any, default: Any, annotation: str) -> Any:
    """Check ``value`` against the field's declared type (strings of the dataclass annotations)."""
    ann = annotation.replace(" ", "")
    if ann.startswith("tuple"):
        if not isinstance(value, list | tuple):
            raise _err(source, where, f"expected a list, got {type(value).__name__} {value!r}")
        inner = "float" if "float" in ann else "str"
        items = tuple(_coerce(source, where, v, None, inner) for v in value)
        if ann == "tuple[float,float]" and len(items) != 2:
            raise _err(source, where, f"expected two numbers, got {len(items)}")
        return items
    if "None" in ann and value is None:
        return None
    base = ann.split("|")[0]
    if base == "bool":
        if not isinstance(value, bool):
            raise _err(source, where, f"expected true or false, got {value!r}")
        return value
    if base == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _err(source, where, f"expected a whole number, got {value!r}")
        if value < 0:
            raise _err(source, where, f"must be 0 or more, got {value}")
        return value
    if base == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _err(source, where, f"expected a number, got {value!r} (write 2.0e-5, not 2e-5 in quotes)")
        if value < 0:
            raise _err(source, where, f"must be 0 or more, got {value}")
        return float(value)
    if base == "str":
        if not isinstance(value, str) or not value:
            raise _err(source, where, f"expected a non-empty string, got {value!r}")
        return value
    if base.startswith("dict"):
        if not isinstance(value, dict):
            raise _err(source, where, f"expected a mapping, got {value!r}")
        return value
    raise AssertionError(f"unhandled annotation {annotation}")  # pragma: no cover


def _fields_from(source: str, cls: type, mapping: dict[str, Any], where: str, skip: tuple[str, ...]) -> dict:
    known = {f.name: f for f in fields(cls) if f.name not in skip}
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if key not in known:
            guess = difflib.get_close_matches(str(key), list(known), n=1)
            fix = f"did you mean '{guess[0]}'?" if guess else f"known keys: {', '.join(sorted(known))}"
            raise _err(source, f"{where}{key}", f"unknown key — {fix}")
        f = known[key]
        out[key] = _coerce(source, f"{where}{key}", value, f.default, str(f.type))
    for name, f in known.items():
        if name not in out and _is_required(f):
            raise _err(source, f"{where}{name}", "required key is missing")
    return out


def _is_required(f: Any) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def parse_config(data: Any, source: str = "<config>", base: Path | None = None) -> TrainConfig:
    """Validate a loaded YAML mapping into a :class:`TrainConfig`. Relative paths resolve against ``base``."""
    if not isinstance(data, dict):
        raise _err(source, "top level", "expected a mapping of settings (model:, output_dir:, phases: ...)")
    top = dict(data)
    raw_phases = top.pop("phases", None)
    if not isinstance(raw_phases, list) or not raw_phases:
        raise _err(source, "phases", "expected a non-empty list of phases (name:, data:, ...)")
    values = _fields_from(source, TrainConfig, top, "", skip=("phases", "source"))
    phases = []
    for i, raw in enumerate(raw_phases):
        if not isinstance(raw, dict):
            raise _err(source, f"phases[{i}]", "expected a mapping (name:, data:, ...)")
        p = _fields_from(source, PhaseConfig, raw, f"phases[{i}].", skip=())
        if base is not None and not Path(p["data"]).is_absolute():
            p["data"] = str(base / p["data"])
        phases.append(PhaseConfig(**p))
    names = [p.name for p in phases]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise _err(source, "phases", f"phase names must be unique; repeated: {', '.join(sorted(dup))}")
    for i, p in enumerate(phases):
        if not p.name.replace("-", "").replace("_", "").isalnum():
            raise _err(source, f"phases[{i}].name", f"{p.name!r}: use letters, digits, '-' and '_' (it names a folder)")
        if p.effective_batch < 1:
            raise _err(source, f"phases[{i}].effective_batch", "must be at least 1")
        if p.epochs < 1:
            raise _err(source, f"phases[{i}].epochs", "must be at least 1")
        hf = p.heldout_fraction
        if hf is not None and not 0 <= hf < 1:
            raise _err(source, f"phases[{i}].heldout_fraction", "must be in [0, 1)")
    if not 0 <= values.get("heldout_fraction", 0.05) < 1:
        raise _err(source, "heldout_fraction", "must be in [0, 1)")
    if values.get("max_tokens_per_batch", 1) < 1 or values.get("max_seq_len", 1) < 1:
        raise _err(source, "max_tokens_per_batch", "must be at least 1")
    if values.get("max_seq_len", 2048) > values.get("max_tokens_per_batch", 16384):
        raise _err(source, "max_seq_len", "is larger than max_tokens_per_batch: a long sample would never fit "
                   "in a micro-batch; raise max_tokens_per_batch or lower max_seq_len")
    if values.get("dtype", "auto") not in _DTYPES or values.get("save_dtype", "auto") not in _DTYPES:
        raise _err(source, "dtype", f"one of {', '.join(_DTYPES)}")
    if values.get("attn_implementation", "auto") not in _ATTN:
        raise _err(source, "attn_implementation", f"one of {', '.join(_ATTN)}")
    if values.get("keep_checkpoints", 2) < 1:
        raise _err(source, "keep_checkpoints", "must be at least 1 (resume needs one)")
    for key in ("model", "output_dir"):
        if base is not None and key in values and not Path(values[key]).is_absolute():
            values[key] = str(base / values[key])
    return TrainConfig(phases=tuple(phases), source=source, **values)


def load_config(path: Path) -> TrainConfig:
    """Read and validate ``path``; relative paths inside it are relative to its folder."""
    path = Path(path)
    if not path.is_file():
        raise TrainConfigError(f"{path}: no such config file")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TrainConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data, str(path), path.parent.resolve())


def check_inputs(config: TrainConfig) -> None:
    """Everything that can be checked without torch: data files exist, the model folder is complete."""
    for p in config.phases:
        if not Path(p.data).is_file():
            raise TrainConfigError(f"{config.source}: phase {p.name}: data file {p.data} does not exist "
                                   "(write it with `labrador generate`, or fix the path)")
    model = Path(config.model)
    if not model.is_dir():
        raise TrainConfigError(f"{config.source}: model: {model} is not a folder (a Hugging Face model folder "
                               "with config.json, safetensors weights and a tokenizer)")
    if not (model / "config.json").is_file():
        raise TrainConfigError(f"{config.source}: model: {model} has no config.json")
    if not any((model / n).is_file() for n in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        raise TrainConfigError(f"{config.source}: model: {model} has no tokenizer (tokenizer.json); save the "
                               "tokenizer beside the weights with tokenizer.save_pretrained")
    if not _has_chat_template(model):
        raise TrainConfigError(f"{config.source}: model: {model} has no chat template; add one "
                               "(chat_template.jinja, or chat_template in tokenizer_config.json)")


def _has_chat_template(model: Path) -> bool:
    if (model / "chat_template.jinja").is_file() or (model / "chat_template.json").is_file():
        return True
    tc = model / "tokenizer_config.json"
    if tc.is_file():
        try:
            return bool(json.loads(tc.read_text(encoding="utf-8")).get("chat_template"))
        except (OSError, ValueError):
            return False
    return False
