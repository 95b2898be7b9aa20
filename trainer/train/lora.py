"""LoRA students through peft: the model is wrapped with low-rank adapters before the optimizer sees it, so the
optimizer holds state for the adapters only; at the end of a phase the adapters are folded into the weights
(``merge: true``, the default) or saved as an adapter folder that names its base.

The fold is a pure function of the state dict, so it works on whatever the parallel layer gathered (one
process, DDP or a future sharded path) and a test can check it against ``W + B·A·(alpha/r)`` directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .config import LoraConfig

PEFT_PREFIX = "base_model.model."
ADAPTER_CONFIG = "adapter_config.json"


def wrap(model: Any, lora: LoraConfig, *, checkpointing: bool = False) -> Any:
    """``model`` with fresh adapters on ``lora.target_modules`` (``all-linear``: every linear layer but the
    output head); only the adapters require gradients. ``checkpointing``: gradient checkpointing is on."""
    from peft import LoraConfig as PeftLora
    from peft import get_peft_model

    targets: Any = "all-linear" if lora.target_modules == ("all-linear",) else list(lora.target_modules)
    if checkpointing:
        model.enable_input_require_grads()  # checkpointed blocks need an input that asks for gradients
    return get_peft_model(model, PeftLora(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                          target_modules=targets, task_type="CAUSAL_LM"))


def merged_state(state: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    """A peft model's state dict as the plain model's: every adapted weight ``W`` (out, in) becomes
    ``W + B @ A * scale`` with ``A`` (r, in) and ``B`` (out, r); adapter tensors are dropped and the names lose
    peft's prefixes. Computed in fp32, returned in ``W``'s dtype."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if ".lora_" in key:
            continue
        name = key.removeprefix(PEFT_PREFIX)
        if ".base_layer." in name:
            stem = key.rsplit(".base_layer.", 1)[0]
            name = name.replace(".base_layer.", ".")
            a, b = state.get(f"{stem}.lora_A.default.weight"), state.get(f"{stem}.lora_B.default.weight")
            if key.endswith(".weight") and a is not None and b is not None:
                value = (value.float() + (b.float() @ a.float()) * scale).to(value.dtype)
        out[name] = value
    return out


def adapter_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The adapter tensors of a peft model's state dict (what an adapter folder holds)."""
    return {k: v for k, v in state.items() if ".lora_" in k}


def is_adapter(folder: Path | str) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file() and not (Path(folder) / "config.json").is_file()


def adapter_base(folder: Path | str) -> str:
    return json.loads((Path(folder) / ADAPTER_CONFIG).read_text(encoding="utf-8"))["base_model_name_or_path"]


def load_merged(folder: Path | str, **kwargs: Any) -> Any:
    """An adapter folder's model: its base with the adapters folded in (``kwargs`` go to ``from_pretrained``)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(adapter_base(folder), **kwargs)
    return PeftModel.from_pretrained(base, str(folder)).merge_and_unload()


def load_causal_lm(folder: Path | str, **kwargs: Any) -> Any:
    """A model folder or an adapter folder, loaded as a plain causal LM."""
    if is_adapter(folder):
        return load_merged(folder, **kwargs)
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
