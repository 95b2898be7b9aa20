"""A smaller student that shares its teacher's tokenizer: the teacher's embeddings, final norm and head, and
a chosen subset of its layers (DistilBERT-style initialisation), so it starts close to the teacher and
trains at usable speed on a CPU."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

from labrador.validators.atomic import publish_dir

from ..models.card import CardFacts, base_facts, write_card

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


def layers_of(source: Path, text: str) -> list[int]:
    """``text`` (like ``"0,29"``) parsed against the number of layers of the model folder ``source``."""
    return parse_layers(text, json.loads((Path(source) / "config.json").read_text())["num_hidden_layers"])


def check_out(source: Path, out: Path) -> None:
    """Refuse an ``out`` that would destroy something we did not write: the source model itself (or a folder
    inside or above it), or a non-empty folder without our marker (``labrador-model.json``)."""
    from ..models.store import MARKER

    src, dst = Path(source).resolve(), Path(out).resolve()
    if dst == src or src in dst.parents or dst in src.parents:
        raise ValueError(f"--out {out} is the source model's folder or overlaps it ({source}); choose a folder "
                         "outside it (nothing was changed)")
    if dst.exists() and not dst.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder (nothing was changed)")
    if dst.is_dir() and any(dst.iterdir()) and not _derived_here(dst / MARKER):
        raise ValueError(f"--out {out} is not empty and is not a student Labrador derived (no {MARKER} from "
                         "`models derive`); choose an empty or new folder (nothing was changed)")


def _derived_here(marker: Path) -> bool:
    try:
        return "derived_from" in json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def derive_student(source: Path, layers: list[int], out: Path) -> Path:
    """Write the student into ``out``: config with ``num_hidden_layers = len(layers)``, weights of the chosen
    layers renumbered 0..n-1, tokenizer copied, and a ``labrador-model.json`` marker; built in a temporary
    folder beside ``out`` and renamed into place. ``out`` must pass :func:`check_out`."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from ..models.store import MARKER
    from ..train.export import fit_weights

    source, out = Path(source), Path(out)
    check_out(source, out)
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
    problem = fit_weights(model, student_state)
    if problem:
        raise ValueError(f"cannot map the teacher's weights onto the student ({problem})")
    model.tie_weights()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(source).save_pretrained(tmp)
        marker = {"derived_from": str(source.resolve()), "layers": layers}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        write_card(tmp, derived_card(source, layers, total, out.name))
        check_out(source, out)  # still ours: nothing appeared there while we worked
        publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def derived_card(source: Path, layers: list[int], total: int, name: str, healed: str = "") -> CardFacts:
    """A cut's card: which layers of which model, and (``healed``) how it was healed since."""
    base, licence = base_facts(str(source))
    summary = (f"Layers {', '.join(map(str, layers))} of `{base}` ({len(layers)} of {total}), cut by Labrador's "
               "`labrador models derive`. " + (healed or "Not trained since the cut: heal it (`labrador models "
                                                        "heal`) or train it before use."))
    return CardFacts(name=name, base_model=base, license=licence, summary=summary)
