"""A GGUF file -> a plain Hugging Face folder (safetensors, config, tokenizer, chat template).

Why: transformers reads GGUF (dequantising to float) but refuses ``save_pretrained`` on such a model. So
the dequantised weights are loaded into a model built from the same config, then saved normally; every
later load is a plain, fast ``from_pretrained``. torch and transformers are needed (the [train] extra).
"""

from __future__ import annotations

from pathlib import Path


def convert_gguf(gguf: Path, out: Path) -> None:
    """Write the model in ``gguf`` as a Hugging Face folder ``out`` (created; must not exist)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder, name = str(Path(gguf).parent), Path(gguf).name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    state = loaded.state_dict()
    del loaded
    if hasattr(config, "quantization_config"):  # the saved weights are plain floats, not GGUF blocks
        del config.quantization_config
    config.__dict__.pop("_model_name_or_path", None)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tie = getattr(config, "tie_word_embeddings", False)
    tied = {k for k in missing if k.endswith("lm_head.weight")} if tie else set()
    if set(missing) - tied or unexpected:
        raise ValueError(f"{gguf}: weights do not fit the model's config (missing {sorted(set(missing) - tied)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]})")
    if tied:
        model.tie_weights()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out.mkdir(parents=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
