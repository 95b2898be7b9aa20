"""``labrador train`` configuration: one YAML file, checked completely before any weights load.

Why strict: a typo in a training config (``learning_rate`` for ``lr``) silently trains with the default
for hours. Unknown keys and wrong types are errors that name the file, the key and the fix. This module
is torch-free so ``--dry-run`` and config errors stay fast.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

# upstream's (instructlab/training) phase defaults; ours are per phase and overridable
DEFAULT_BETAS = (0.9, 0.95)


class TrainConfigError(ValueError):
    """A config that cannot be used; the message names the file, the key and the fix."""


class TrainFailed(RuntimeError):
    """A run that stopped (a non-finite loss or gradient); the message says where and what to change."""


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
        """What must not change between a run and its ``--resume``: everything that decides the weights, the
        phase files' content included (the same path with new data must not be mixed into a resumed run)."""
        import hashlib

        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("source", "trackers")}
        d["phases"] = [{f.name: getattr(p, f.name) for f in fields(p)} for p in self.phases]
        d["data_sha256"] = [_file_sha256(Path(p.data)) for p in self.phases]
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_sha256(path: Path) -> str | None:
    import hashlib

    if not path.is_file():
        return None
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


_DTYPES = ("auto", "float32", "bfloat16", "float16")
# accelerate's built-in trackers (accelerate.tracking.LOGGER_TYPE_TO_CLASS)
TRACKERS = ("aim", "clearml", "comet_ml", "dvclive", "mlflow", "swanlab", "tensorboard", "trackio", "wandb")
MAX_LR = 1.0  # above this AdamW diverges on any model: a typo (1e-2 for 1e-5), refused before any work
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
        if value >= 2**63:
            raise _err(source, where, f"{value} is too large")
        return value
    if base == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _err(source, where, f"expected a number, got {value!r} (write 2.0e-5, not 2e-5 in quotes)")
        if not math.isfinite(value):
            raise _err(source, where, f"must be a finite number, got {value}")
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
        if not 0 < p.lr <= MAX_LR:
            raise _err(source, f"phases[{i}].lr", f"must be above 0 and at most {MAX_LR}, got {p.lr} "
                       "(LAB's defaults: 2.0e-5 for knowledge, 6.0e-6 for skills)")
        if not all(0 <= b < 1 for b in p.betas):
            raise _err(source, f"phases[{i}].betas", f"each must be in [0, 1), got {list(p.betas)} (default 0.9, 0.95)")
        if p.max_grad_norm <= 0:
            raise _err(source, f"phases[{i}].max_grad_norm", "must be above 0 (1.0 clips as LAB does)")
        if p.min_lr_ratio > 1:
            raise _err(source, f"phases[{i}].min_lr_ratio", "must be in [0, 1]")
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
    if values.get("seed", 0) >= 2**32:
        raise _err(source, "seed", f"must be below 2**32, got {values['seed']}")
    unknown = [t for t in values.get("trackers", ()) if t not in TRACKERS]
    if unknown:
        raise _err(source, "trackers", f"unknown tracker {unknown[0]!r}; one of {', '.join(TRACKERS)}")
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
    check_weights(model, config.source)


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole safetensors file (missing, cut short, a broken header), or ``None``. Reads
    the header only: 8 bytes of length, the JSON header, and the size the tensors' offsets need."""
    import struct

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{path} is cut short ({size} bytes)"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8 or n > 100 << 20:
                return f"{path} has an invalid header length ({n} bytes in a {size}-byte file)"
            header = json.loads(f.read(n))
    except FileNotFoundError:
        return f"{path} is missing"
    except (OSError, ValueError) as exc:
        return f"{path} has a broken header ({exc})"
    if not isinstance(header, dict):
        return f"{path} has a broken header (not a JSON object)"
    end = 0
    for name, t in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(t["data_offsets"][1]))
        except (KeyError, TypeError, ValueError, IndexError):
            return f"{path} has a broken header (tensor {name!r} has no data_offsets)"
    if 8 + n + end > size:
        return f"{path} is cut short: its tensors need {8 + n + end} bytes, the file has {size}"
    return None


def check_weights(model: Path, source: str) -> None:
    """The model folder's safetensors weights are there and whole (headers and sizes; no tensor is read)."""
    files = sorted(model.glob("*.safetensors"))
    if not files and any(model.glob("pytorch_model*.bin")):
        return  # pickled weights: torch reads and checks them
    if not files:
        raise TrainConfigError(f"{source}: model: {model} has no safetensors weights (model.safetensors); save "
                               "the model with save_pretrained(safe_serialization=True)")
    index = model / "model.safetensors.index.json"
    if index.is_file():
        try:
            wanted = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TrainConfigError(f"{source}: model: {index} cannot be read ({exc})") from None
        missing = sorted(wanted - {f.name for f in files})
        if missing:
            raise TrainConfigError(f"{source}: model: {model / missing[0]} is missing (named by {index.name})")
    for f in files:
        problem = safetensors_problem(f)
        if problem:
            raise TrainConfigError(f"{source}: model: {problem}; copy or pull the model again")


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
