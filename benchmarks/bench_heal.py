"""Healing a derived student: loss vs time for several cuts of the embedded model (issue 19).

    .venv/bin/python benchmarks/bench_heal.py                          # 2-, 6- and 11-layer cuts, default steps
    .venv/bin/python benchmarks/bench_heal.py --cuts 0,29 --steps 60   # one cut, fewer steps

For each cut: the unhealed cut's loss, the healing time (derive + distil, from an empty cache), and the
healed loss. Losses are mean nats per reply token on (a) the seed examples of the starting taxonomy's
compositional skills (what a night trains on; never in the healing corpus) and (b) held-out passages of the
healing corpus. The teacher's own losses and ln V are the anchors, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def seed_samples(tok, taxonomy: Path) -> list:
    """The compositional skills' seed examples, encoded with the model's chat template."""
    from labrador.trainer.train.data import encode
    from labrador.validators import Config, check_file
    from labrador.validators.seeds import seed_conversations

    out = []
    for qna in sorted((taxonomy / "compositional_skills").rglob("qna.yaml")):
        report = check_file(str(qna.relative_to(taxonomy)), qna.read_bytes(), Config())
        for messages in seed_conversations(report.data):
            out.append(encode(tok, messages))
    return out


def corpus_heldout(tok, s, count: int = 48) -> list:
    """Passages of the corpus past what any heal of these settings reads (never trained on)."""
    from labrador.trainer.students.heal import corpus_rows
    from labrador.trainer.train.data import encode

    rows = corpus_rows(s.passage_words, 10**6)
    return [encode(tok, r["messages"]) for r in rows[-count:]]


def losses(path: Path, seeds: list, held: list) -> dict[str, float]:
    import torch
    from transformers import AutoModelForCausalLM

    from labrador.trainer.train.evaluate import mean_loss

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    return {"seeds": round(mean_loss(model, seeds, 2048), 3), "corpus": round(mean_loss(model, held, 2048), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cuts", nargs="+", default=["0,29", "0,6,12,18,24,29", "0,3,6,9,12,15,18,21,24,27,29"])
    p.add_argument("--steps", type=int, default=0, help="healing steps (default: HealSettings.steps)")
    p.add_argument("--lr", type=float, default=0.0)
    p.add_argument("--attention", type=float, default=-1.0, help="attention KL weight (default: the setting's)")
    p.add_argument("--chat-samples", type=int, default=-1, help="parent's sampled replies in the corpus")
    p.add_argument("--chat-tokens", type=int, default=0, help="longest sampled reply")
    p.add_argument("--out", type=Path, help="write the JSON here too")
    a = p.parse_args()
    from transformers import AutoTokenizer

    from labrador.trainer.models.store import pull
    from labrador.trainer.students.derive import derive_student, parse_layers
    from labrador.trainer.students.heal import HealSettings, heal_student

    s = HealSettings()
    s = replace(s, **{k: v for k, v in (("steps", a.steps), ("lr", a.lr)) if v})
    if a.chat_samples >= 0:
        s = replace(s, chat_samples=a.chat_samples)
    if a.chat_tokens:
        s = replace(s, chat_tokens=a.chat_tokens)
    if a.attention >= 0:
        s = replace(s, attention=a.attention)
    parent = pull()
    tok = AutoTokenizer.from_pretrained(str(parent))
    seeds, held = seed_samples(tok, ROOT / "taxonomy"), corpus_heldout(tok, s)
    result = {"settings": s.__dict__, "seed_examples": len(seeds), "ln_v": round(math.log(len(tok)), 3),
              "teacher": losses(parent, seeds, held), "cuts": {}}
    print(json.dumps({k: result[k] for k in ("seed_examples", "ln_v", "teacher")}), flush=True)
    for cut in a.cuts:
        layers = parse_layers(cut, 30)
        with tempfile.TemporaryDirectory() as tmp:
            raw = derive_student(parent, layers, Path(tmp) / "raw")
            before = losses(raw, seeds, held)
            t0 = time.perf_counter()
            healed = heal_student(parent, layers, s, root=Path(tmp) / "cache", progress=False)
            seconds = time.perf_counter() - t0
            after = losses(healed, seeds, held)
        row = {"layers": len(layers), "unhealed": before, "healed": after, "heal_s": round(seconds, 1)}
        result["cuts"][cut] = row
        print(json.dumps({cut: row}), flush=True)
    print(json.dumps(result, indent=1))
    if a.out:
        a.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
