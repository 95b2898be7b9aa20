"""How the model is spread over the processes: replicated (one process, or accelerate's DDP) or sharded (FSDP2).

Why FSDP2 through our own code path: accelerate sets FSDP up only where it sees GPUs; launched with an FSDP
config on CPUs it silently replicates the weights (DDP). So the launcher's FSDP settings (the
``trainer/configs/fsdp_*.yaml`` keys, which ``accelerate launch`` turns into ``FSDP_*`` variables) are read
here and applied by :func:`shard` the same way on every device: ``fully_shard`` on each transformer layer, then
on the root. The two-process CPU test therefore runs exactly the wrapping a GPU run gets. Checkpoints are
sharded (``torch.distributed.checkpoint``: one file per rank, resumable at the same world size); the final
folder is one Hugging Face folder, its full state gathered on rank 0.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import TrainConfigError

FSDP_ENV = "ACCELERATE_USE_FSDP"
_WRAPS = ("TRANSFORMER_BASED_WRAP", "NO_WRAP")


@dataclass(frozen=True)
class FsdpSettings:
    """The FSDP keys of an accelerate config that this trainer honours."""

    reshard_after_forward: bool = True
    wrap: str = "TRANSFORMER_BASED_WRAP"
    layer_classes: tuple[str, ...] = ()  # empty: the model's own ``_no_split_modules``
    offload_params: bool = False
    activation_checkpointing: bool = False


TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A yes/no key; anything else (``banana``, ``5``) is refused, never read as false."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in TRUE + FALSE:
        key = name.lower()
        raise TrainConfigError(f"{key} is {env[name].strip()!r} (from the accelerate config, passed as {name}): write "
                               f"true or false")
    return raw in TRUE


def fsdp_settings(env: Mapping[str, str] = os.environ) -> FsdpSettings | None:
    """The FSDP settings ``accelerate launch`` passed down, or ``None`` when FSDP was not asked for.
    Refuses what this trainer does not do (FSDP1, size-based wrapping) with the key to change."""
    if env.get(FSDP_ENV, "").strip().lower() != "true":
        return None
    version = env.get("FSDP_VERSION", "1").strip() or "1"
    if version != "2":
        raise TrainConfigError(f"fsdp_version {version} was asked for; labrador train shards with FSDP2 only: set "
                               "fsdp_version: 2 under fsdp_config (see trainer/configs/fsdp_8gpu.yaml)")
    wrap = env.get("FSDP_AUTO_WRAP_POLICY", "TRANSFORMER_BASED_WRAP").strip() or "TRANSFORMER_BASED_WRAP"
    if wrap not in _WRAPS:
        raise TrainConfigError(f"fsdp_auto_wrap_policy {wrap} is not supported: use one of {', '.join(_WRAPS)}")
    classes = tuple(c.strip() for c in env.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "").split(",") if c.strip())
    return FsdpSettings(reshard_after_forward=_flag(env, "FSDP_RESHARD_AFTER_FORWARD", True), wrap=wrap,
                        layer_classes=classes, offload_params=_flag(env, "FSDP_OFFLOAD_PARAMS", False),
                        activation_checkpointing=_flag(env, "FSDP_ACTIVATION_CHECKPOINTING", False))


def wrapped_layers(model: torch.nn.Module, settings: FsdpSettings) -> list[torch.nn.Module]:
    """The modules that get their own FSDP group (each gathers its weights just before it runs), in order."""
    if settings.wrap == "NO_WRAP":
        return []
    names = set(settings.layer_classes or getattr(model, "_no_split_modules", None) or ())
    if not names:
        raise TrainConfigError(f"{type(model).__name__} names no transformer layer class: set "
                               "fsdp_transformer_layer_cls_to_wrap under fsdp_config")
    layers = [m for m in model.modules() if type(m).__name__ in names and m is not model]
    if not layers:
        raise TrainConfigError(f"no module of class {', '.join(sorted(names))} in {type(model).__name__}: fix "
                               "fsdp_transformer_layer_cls_to_wrap under fsdp_config")
    return layers


def shard(model: torch.nn.Module, settings: FsdpSettings, device: torch.device, bf16: bool) -> torch.nn.Module:
    """``fully_shard`` each layer, then the root (embeddings, final norm and a tied head stay in the root group)
    over all processes. Weights stay fp32; with ``bf16`` they are computed in bf16 and gradients reduced in
    fp32. Returns the same module, now sharded in place."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

    if settings.activation_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable()
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    kwargs: dict[str, Any] = {
        "mesh": mesh, "reshard_after_forward": settings.reshard_after_forward,
        "mp_policy": MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16
        else MixedPrecisionPolicy(),
        "offload_policy": CPUOffloadPolicy() if settings.offload_params and device.type != "cpu" else OffloadPolicy(),
    }
    for layer in wrapped_layers(model, settings):
        fully_shard(layer, **kwargs)
    fully_shard(model, **kwargs)
    return model


def tied_aliases(model: torch.nn.Module) -> list[str]:
    """Names of parameters that are another, earlier named parameter (a head tied to the embeddings)."""
    first: dict[int, str] = {}
    aliases = []
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in first:
            aliases.append(name)
        else:
            first[id(param)] = name
    return aliases


class Replicated:
    """One process, or accelerate's data parallelism (every rank holds the whole model)."""

    sharded = False

    def __init__(self, accelerator: Any) -> None:
        self.acc = accelerator

    def prepare(self, model: Any, make_optimizer: Callable[[Any], Any]) -> tuple[Any, Any]:
        return self.acc.prepare(model, make_optimizer(model))

    def sync(self, model: Any, on: bool) -> AbstractContextManager:
        """Gradients are reduced across ranks only in a backward run with ``on``."""
        return nullcontext() if on else self.acc.no_sync(model)

    def clip(self, model: Any, max_norm: float) -> float:
        return float(self.acc.clip_grad_norm_(model.parameters(), max_norm))

    def save_state(self, model: Any, optimizer: Any, folder: Path) -> None:
        self.acc.save_state(str(folder))

    def load_state(self, model: Any, optimizer: Any, folder: Path) -> None:
        self.acc.load_state(str(folder))

    def full_state(self, model: Any) -> dict[str, torch.Tensor]:
        """The whole state dict (meaningful on the main process)."""
        return self.acc.get_state_dict(model)

    def unwrap(self, model: Any) -> Any:
        return self.acc.unwrap_model(model)


class Sharded:
    """FSDP2: each rank holds 1/world of every weight, gradient and optimizer state."""

    sharded = True

    def __init__(self, accelerator: Any, settings: FsdpSettings, bf16: bool) -> None:
        self.acc, self.settings, self.bf16 = accelerator, settings, bf16

    def prepare(self, model: Any, make_optimizer: Callable[[Any], Any]) -> tuple[Any, Any]:
        shard(model, self.settings, self.acc.device, self.bf16)
        return model, make_optimizer(model)  # the optimizer sees the sharded parameters

    def sync(self, model: Any, on: bool) -> AbstractContextManager:
        model.set_requires_gradient_sync(on)
        return nullcontext()

    def clip(self, model: Any, max_norm: float) -> float:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)

    def _state(self, model: Any, optimizer: Any) -> dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import get_state_dict

        weights, optim = get_state_dict(model, optimizer)
        return {"model": weights, "optimizer": optim}

    def save_state(self, model: Any, optimizer: Any, folder: Path) -> None:
        import torch.distributed.checkpoint as dcp

        dcp.save(self._state(model, optimizer), checkpoint_id=str(folder))

    def load_state(self, model: Any, optimizer: Any, folder: Path) -> None:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import set_state_dict

        state = self._state(model, optimizer)
        dcp.load(state, checkpoint_id=str(folder))
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])

    def full_state(self, model: Any) -> dict[str, torch.Tensor]:
        """Every weight gathered whole on the main process, on the CPU (other ranks get an empty dict)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        for name in tied_aliases(model):  # gathered separately, they would be saved as two untied weights
            state.pop(name, None)
        return state

    def unwrap(self, model: Any) -> Any:
        return model
