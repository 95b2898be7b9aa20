"""A resumable checkpoint as a Hugging Face folder, so a mid-phase model can be loaded, evaluated and promoted
like a finished one (the nightly job's checkpoint choice). The checkpoint holds the weights only; the config,
dtype and tokenizer come from the phase's ``final`` folder (same model, same run)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from labrador.validators.atomic import publish_dir

WEIGHTS = "model.safetensors"  # what Accelerator.save_state writes for one model on one process
HF_EXTRAS = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
             "tokenizer.model", "generation_config.json", "labrador-leaves.json")


class ExportError(RuntimeError):
    """The checkpoint's weights cannot become a model folder (sharded, missing or not this model's)."""


def export_checkpoint(checkpoint: Path, final: Path, out: Path) -> Path:
    """``out``: a loadable folder with ``checkpoint``'s weights in ``final``'s dtype, published by rename
    (a second call with the folder present and whole does nothing; a damaged one is exported again)."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    checkpoint, final, out = Path(checkpoint), Path(final), Path(out)
    if whole_folder(out):
        return out
    weights = checkpoint / WEIGHTS
    if not weights.is_file():
        raise ExportError(f"{checkpoint}: no {WEIGHTS} (a sharded or multi-process checkpoint cannot be exported "
                          "here; use the phase's final model)")
    model = AutoModelForCausalLM.from_pretrained(str(final), dtype="auto", local_files_only=True)
    dtype = next(model.parameters()).dtype
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
    problem = fit_weights(model, state)
    if problem:
        raise ExportError(f"{checkpoint}: its weights do not fit {final} ({problem})")
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(str(tmp), safe_serialization=True)
    for name in HF_EXTRAS:
        if (final / name).is_file() and not (tmp / name).exists():
            shutil.copy2(final / name, tmp / name)
    out.parent.mkdir(parents=True, exist_ok=True)
    publish_dir(tmp, out)
    return out


def whole_folder(folder: Path) -> bool:
    """A published model folder still whole: config.json and every safetensors file as long as its header says
    (a truncated or half-copied folder is made again, never served)."""
    from .config import safetensors_problem

    files = list(Path(folder).glob("*.safetensors"))
    return (Path(folder) / "config.json").is_file() and bool(files) and \
        all(safetensors_problem(f) is None for f in files)


def fit_weights(model: Any, state: dict[str, Any]) -> str | None:
    """Load ``state`` into ``model`` in place; what does not fit, or ``None``. A head tied to the embeddings
    may be absent from ``state`` (it is saved once, as the embeddings)."""
    import torch

    with torch.no_grad():
        missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (k.endswith("lm_head.weight") and model.config.tie_word_embeddings)]
    if missing or unexpected:
        return f"missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}"
    return None
