"""A smaller student that shares its teacher's tokenizer: the teacher's embeddings, final norm and head, and
a chosen subset of its layers (DistilBERT-style initialisation), so it starts close to the teacher and
trains at usable speed on a CPU."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

_LAYER = re.compile(r"^(model\.layers\.)(\d+)(\..*)$")


def parse_layers(text: str, total: int) -> list[int]:
    """``"0,29"`` or ``"0-3,29"`` -> sorted unique layer indices, each in [0, total)."""
    picked: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        a, _, b = part.partition("-")
        try:
            lo, hi = int(a), int(b or a)
        except ValueError:
            raise ValueError(f"--layers: {part!r} is not a layer number or range (like 0,29 or 0-3,29)") from None
        if lo > hi or lo < 0 or hi >= total:
            raise ValueError(f"--layers: {part!r} is outside 0-{total - 1} (the teacher has {total} layers)")
        picked.update(range(lo, hi + 1))
    if not picked:
        raise ValueError("--layers: name at least one layer")
    return sorted(picked)


def derive_student(source: Path, layers: list[int], out: Path) -> Path:
    """Write the student into ``out`` (built in a temporary folder, then renamed): config with
    ``num_hidden_layers = len(layers)``, weights of the chosen layers renumbered 0..n-1, tokenizer copied."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source, out = Path(source), Path(out)
    config = AutoConfig.from_pretrained(source)
    total = config.num_hidden_layers
    if any(i < 0 or i >= total for i in layers):
        raise ValueError(f"layers {layers} are outside 0-{total - 1}")
    state = {}
    for f in sorted(source.glob("*.safetensors")):
        state.update(load_file(str(f)))
    keep = {old: new for new, old in enumerate(layers)}
    student_state = {}
    for key, value in state.items():
        m = _LAYER.match(key)
        if m is None:
            student_state[key] = value
        elif int(m.group(2)) in keep:
            student_state[f"{m.group(1)}{keep[int(m.group(2))]}{m.group(3)}"] = value
    config.num_hidden_layers = len(layers)
    if getattr(config, "layer_types", None):
        config.layer_types = [config.layer_types[i] for i in layers]
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(student_state, strict=False)
    missing = [k for k in missing if not (k.endswith("lm_head.weight") and config.tie_word_embeddings)]
    if missing or unexpected:
        raise ValueError(f"cannot map the teacher's weights onto the student (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    model.tie_weights()
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    AutoTokenizer.from_pretrained(source).save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
