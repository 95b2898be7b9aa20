"""``labrador train`` configuration: one YAML file, checked completely before any weights load.

Why strict: a typo in a training config (``learning_rate`` for ``lr``) silently trains with the default
for hours. Unknown keys and wrong types are errors that name the file, the key and the fix. This module
is torch-free so ``--dry-run`` and config errors stay fast.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import Field, Strict

from labrador.validators.typed import (
    FORBID_EXTRA,
    ConfigError,
    Count,
    Epochs,
    Flag,
    Fraction,
    Invalid,
    Name,
    Number,
    Positive,
    Steps,
    Text,
    Texts,
    Tokens,
    validate,
)

# upstream's (instructlab/training) phase defaults; ours are per phase and overridable
DEFAULT_BETAS = (0.9, 0.95)


class TrainConfigError(ConfigError, ValueError):
    """A config that cannot be used; the message names the file, the key and the fix."""


class TrainFailed(RuntimeError):
    """A run that stopped (a non-finite loss or gradient); the message says where and what to change."""


_DTYPES = ("auto", "float32", "bfloat16", "float16")
# accelerate's built-in trackers (accelerate.tracking.LOGGER_TYPE_TO_CLASS)
TRACKERS = ("aim", "clearml", "comet_ml", "dvclive", "mlflow", "swanlab", "tensorboard", "trackio", "wandb")
LOSS_CHUNK_TOKENS = 1024  # reply positions whose logits exist at once (trainer/train/head.py)
MAX_LR = 1.0  # above this AdamW diverges on any model: a typo (1e-2 for 1e-5), refused before any work
_ATTN = ("auto", "sdpa", "sdpa_varlen", "eager", "flash_attention_2", "flex_attention")
Beta = Annotated[float, Strict(), Field(ge=0, lt=1, allow_inf_nan=False)]


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise Invalid(key, f"must be one of {', '.join(allowed)}, got {value!r}")


@dataclass(frozen=True)
class DAEConfig:
    """Domain alignment from an expert: the expert teaches the domain's samples, the reference the rest."""

    __pydantic_config__: ClassVar = FORBID_EXTRA
    expert: Name
    reference: Name
    domain: Texts = ()  # globs on the sample's `leaf` (the recipes' dialect: validators.leafglob)
    domain_field: Text = ""  # or: a sample field whose truthy value ("true", "1", "yes") marks a domain sample

    def __post_init__(self) -> None:
        if not self.domain and not self.domain_field:
            raise Invalid("domain", "say which samples are the domain's: `domain` (globs on the sample's leaf) "
                          "or `domain_field`")

    def is_domain(self, meta: dict[str, str]) -> bool:
        from labrador.validators.leafglob import selects

        if self.domain_field:
            return str(meta.get(self.domain_field, "")).lower() in ("1", "true", "yes")
        return selects(self.domain, (), meta.get("leaf", ""))


@dataclass(frozen=True)
class DistillConfig:
    """The ``distill:`` block. Exactly one source of teacher targets: ``teacher_model`` (online, loaded frozen
    beside the student), ``teacher_cache`` (offline top-k written by ``labrador distill cache``;
    ``teacher_model`` may stay set, it is then only used to build the cache), or ``dae``."""

    __pydantic_config__: ClassVar = FORBID_EXTRA
    teacher_model: Text = ""
    teacher_cache: Text = ""
    lam: Annotated[float, Strict(), Field(alias="lambda", ge=0, le=1, allow_inf_nan=False)] = 0.5
    temperature: Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)] = 1.0
    prediction: Number = 1.0
    attention: Number = 0.0
    dae: DAEConfig | None = None

    def __post_init__(self) -> None:
        if sum([bool(self.teacher_model or self.teacher_cache), self.dae is not None]) != 1:
            raise Invalid("teacher_model", "give exactly one of `teacher_model` (or `teacher_cache`) and `dae`")
        if self.attention > 0 and (self.offline or self.dae is not None):
            raise Invalid("attention", "needs an online `teacher_model` (attention maps are not cached, and DAE "
                          "distils predictions only)")

    @property
    def offline(self) -> bool:
        return bool(self.teacher_cache) and self.dae is None

    def models(self) -> list[str]:
        """The teacher folders training loads (none when offline)."""
        if self.dae is not None:
            return [self.dae.expert, self.dae.reference]
        return [] if self.offline else [self.teacher_model]


@dataclass(frozen=True)
class LoraConfig:
    """``lora:``: train low-rank adapters (peft) instead of every weight: the optimizer holds state for the
    adapters only. ``merge``: each phase's ``final/`` is a plain model with the adapters folded in (what vLLM
    and ``labrador chat`` load); false: an adapter folder that names its base."""

    __pydantic_config__: ClassVar = FORBID_EXTRA
    r: Annotated[int, Strict(), Field(ge=1, le=4096)] = 16  # the adapters' rank
    alpha: Annotated[float, Strict(), Field(gt=0, le=65536, allow_inf_nan=False)] = 32.0  # scale alpha / r
    dropout: Fraction = 0.05  # on the adapters' input, while training
    target_modules: Annotated[tuple[Name, ...], Field(min_length=1)] = ("all-linear",)  # or names: q_proj, v_proj...
    merge: Flag = True

    @property
    def scale(self) -> float:
        """What ``B @ A`` is multiplied by before it is added to the weight (peft's ``lora_alpha / r``)."""
        return self.alpha / self.r


@dataclass(frozen=True)
class PhaseConfig:
    """One training phase (LAB: phase1 knowledge, phase2 skills with replay)."""

    __pydantic_config__: ClassVar = FORBID_EXTRA
    name: Name
    data: Name
    epochs: Epochs = 1
    max_steps: Steps = 0  # 0: no limit
    effective_batch: Positive = 128  # samples per optimizer step
    lr: Annotated[float, Strict(), Field(gt=0, le=MAX_LR, allow_inf_nan=False)] = 2.0e-5
    warmup_steps: Steps = 25
    betas: tuple[Beta, Beta] = DEFAULT_BETAS
    weight_decay: Number = 0.0
    max_grad_norm: Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)] = 1.0  # 1.0 clips as LAB does
    min_lr_ratio: Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)] = 0.0  # cosine to lr * this
    unmask: Flag = False  # train on every non-system token of every sample (else only samples marked "unmask")
    heldout_fraction: Fraction | None = None  # None: the run's heldout_fraction

    def __post_init__(self) -> None:
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise Invalid("name", f"{self.name!r}: use letters, digits, '-' and '_' (it names a folder)")


@dataclass(frozen=True)
class TrainConfig:
    """A whole ``labrador train`` run; the nightly job's ``[nightly.train]`` table is the same schema."""

    __pydantic_config__: ClassVar = FORBID_EXTRA
    model: Name
    output_dir: Name
    phases: Annotated[tuple[PhaseConfig, ...], Field(min_length=1)]
    seed: Annotated[int, Strict(), Field(ge=0, lt=2**32)] = 0
    max_seq_len: Tokens = 2048  # longer samples are counted and skipped, never truncated
    min_sample_tokens: Count = 20  # shorter samples are broken generations (upstream's rule): dropped, counted
    max_tokens_per_batch: Tokens = 16384  # tokens in one micro-batch on one device
    packing: Flag = True
    # labelled positions whose vocabulary logits exist at once (the head and its loss run chunk by chunk,
    # trainer/train/head.py); 0: all of a micro-batch's at once. Memory only: a resume may change it.
    loss_chunk_tokens: Annotated[int, Strict(), Field(ge=0, le=1_048_576)] = LOSS_CHUNK_TOKENS
    heldout_fraction: Fraction = 0.05
    save_every_steps: Steps = 0  # 0: only at the end of each phase
    keep_checkpoints: Positive = 2  # resumable checkpoints kept (the newest N); resume needs one
    dtype: Text = "auto"  # auto: bf16 on a GPU that has it, fp32 on CPU; or float32 / bfloat16
    save_dtype: Text = "auto"  # auto: the training dtype (bf16 weights are never saved as fp32 on GPU)
    attn_implementation: Text = "auto"  # auto: flash_attention_2 on GPU where installed, else sdpa_varlen packed
    gradient_checkpointing: Flag = False
    trackers: Texts = ()  # accelerate trackers: tensorboard, wandb, mlflow, trackio ...
    distill: DistillConfig | None = None
    lora: LoraConfig | None = None  # low-rank adapters instead of full fine-tuning
    source: Text = ""  # the file this came from (for messages)

    def __post_init__(self) -> None:
        names = [p.name for p in self.phases]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise Invalid("phases", f"phase names must be unique; repeated: {', '.join(dup)}")
        if self.max_seq_len > self.max_tokens_per_batch:
            raise Invalid("max_seq_len", "is larger than max_tokens_per_batch: a long sample would never fit in a "
                          "micro-batch; raise max_tokens_per_batch or lower max_seq_len")
        _one_of("dtype", self.dtype, _DTYPES)
        _one_of("save_dtype", self.save_dtype, _DTYPES)
        _one_of("attn_implementation", self.attn_implementation, _ATTN)
        for t in self.trackers:
            _one_of("trackers", t, TRACKERS)
        if self.lora is not None and not self.lora.merge and len(self.phases) > 1:
            raise Invalid("lora", "merge: false keeps one phase's adapters only; with several phases keep merge: "
                          "true (each phase then starts from the one before, folded in)")
        if self.distill is not None and self.distill.attention > 0 and self.attn_implementation not in ("auto",
                                                                                                        "eager"):
            raise Invalid("distill", "attention distillation needs eager attention (full maps); set "
                          "attn_implementation: eager or auto")

    def phase_dir(self, phase: str) -> Path:
        return Path(self.output_dir) / phase

    def heldout_for(self, phase: PhaseConfig) -> float:
        return self.heldout_fraction if phase.heldout_fraction is None else phase.heldout_fraction

    def fingerprint(self) -> str:
        """What must not change between a run and its ``--resume``: everything that decides the weights, the
        phase files' content included (the same path with new data must not be mixed into a resumed run)."""
        import hashlib

        d = {k: v for k, v in asdict(self).items() if k not in ("source", "trackers", "loss_chunk_tokens")}
        if d["lora"] is None:
            del d["lora"]  # the fingerprint of a full fine-tuning run is what it was before LoRA existed
        d["data_sha256"] = [_file_sha256(Path(p.data)) for p in self.phases]
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_sha256(path: Path) -> str | None:
    import hashlib

    if not path.is_file():
        return None
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _absolute(value: str, base: Path | None) -> str:
    return value if base is None or Path(value).is_absolute() else str(base / value)


def parse_config(data: Any, source: str = "<config>", base: Path | None = None) -> TrainConfig:
    """Validate a loaded YAML mapping into a :class:`TrainConfig`. Relative paths resolve against ``base``."""
    if not isinstance(data, dict):
        raise TrainConfigError(f"{source}: top level: expected a mapping of settings (model:, output_dir:, "
                               "phases: ...)")
    config = validate(TrainConfig, {**data, "source": source}, source, error=TrainConfigError)
    if base is None:
        return config
    distill = config.distill
    if distill is not None:
        dae = distill.dae and replace(distill.dae, expert=_absolute(distill.dae.expert, base),
                                      reference=_absolute(distill.dae.reference, base))
        distill = replace(distill, dae=dae, **{k: _absolute(getattr(distill, k), base) if getattr(distill, k) else ""
                                               for k in ("teacher_model", "teacher_cache")})
    return replace(config, model=_absolute(config.model, base), output_dir=_absolute(config.output_dir, base),
                   phases=tuple(replace(p, data=_absolute(p.data, base)) for p in config.phases), distill=distill)


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
    check_model_folder(Path(config.model), f"{config.source}: model")


def check_model_folder(model: Path, where: str) -> None:
    """A Hugging Face model folder we can load, checked without torch and without reading a tensor: config.json
    of a model type transformers knows, a tokenizer with a chat template, whole safetensors weights. ``where``
    prefixes every message (``FILE: model``, ``--model``)."""
    if not model.is_dir():
        raise TrainConfigError(f"{where}: {model} is not a folder (a Hugging Face model folder with config.json, "
                               "safetensors weights and a tokenizer)")
    adapter = model / "adapter_config.json"
    if adapter.is_file() and not (model / "config.json").is_file():  # a LoRA adapter folder (lora.merge: false)
        try:
            base = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (OSError, ValueError) as exc:
            raise TrainConfigError(f"{where}: {adapter} cannot be read: {exc}") from None
        if not isinstance(base, str) or not base:
            raise TrainConfigError(f"{where}: {adapter} names no base model (base_model_name_or_path)")
        if not (model / "adapter_model.safetensors").is_file():
            raise TrainConfigError(f"{where}: {model} has no adapter_model.safetensors")
        check_model_folder(Path(base), f"{where} (the base model of adapter {model.name})")
        return
    if not (model / "config.json").is_file():
        raise TrainConfigError(f"{where}: {model} has no config.json")
    check_model_type(model / "config.json", where)
    if not any((model / n).is_file() for n in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        raise TrainConfigError(f"{where}: {model} has no tokenizer (tokenizer.json); save the "
                               "tokenizer beside the weights with tokenizer.save_pretrained")
    if not _has_chat_template(model):
        raise TrainConfigError(f"{where}: {model} has no chat template; add one "
                               "(chat_template.jinja, or chat_template in tokenizer_config.json)")
    check_weights(model, where)


def check_model_type(config_json: Path, where: str) -> None:
    """``model_type`` in ``config_json`` is one transformers can build (read from its table of names: no torch)."""
    try:
        model_type = json.loads(config_json.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, UnicodeDecodeError, RecursionError, AttributeError) as exc:
        raise TrainConfigError(f"{where}: {config_json} is not a JSON object ({exc})") from None
    try:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    except ImportError:  # pragma: no cover - without transformers nothing will load it anyway
        return
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING_NAMES:
        import difflib

        guess = difflib.get_close_matches(str(model_type), list(CONFIG_MAPPING_NAMES), n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        raise TrainConfigError(f"{where}: {config_json}: model_type {model_type!r} is not one this transformers "
                               f"knows{hint}; fix config.json or upgrade transformers")


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


def check_weights(model: Path, where: str) -> None:
    """The model folder's safetensors weights are there and whole (headers and sizes; no tensor is read)."""
    files = sorted(model.glob("*.safetensors"))
    if not files and any(model.glob("pytorch_model*.bin")):
        return  # pickled weights: torch reads and checks them
    if not files:
        raise TrainConfigError(f"{where}: {model} has no safetensors weights (model.safetensors); save "
                               "the model with save_pretrained(safe_serialization=True)")
    index = model / "model.safetensors.index.json"
    if index.is_file():
        try:
            wanted = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TrainConfigError(f"{where}: {index} cannot be read ({exc})") from None
        missing = sorted(wanted - {f.name for f in files})
        if missing:
            raise TrainConfigError(f"{where}: {model / missing[0]} is missing (named by {index.name})")
    for f in files:
        problem = safetensors_problem(f)
        if problem:
            raise TrainConfigError(f"{where}: {problem}; copy or pull the model again")


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
