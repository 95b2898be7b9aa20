"""Did tonight's model learn the changes, and did it keep what earlier nights taught? Held-out losses of the
new model and of the model it started from, on tonight's new data, on every earlier promoted night's
held-out data (forgetting = the rise), and on the seed examples of the changed leaves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from labrador.validators import check_file
from labrador.validators.atomic import atomic_write_json
from labrador.validators.seeds import seed_conversations

from .context import Night
from .data import current_rows, read_jsonl


def _heldout(rows: list[dict[str, Any]], fraction: float) -> list[dict[str, Any]]:
    from ..train.data import content_key, is_heldout

    return [r for r in rows if is_heldout(content_key(r["messages"]), fraction)]


def evaluate_night(night: Night, record: dict[str, Any], run_dir: Path, start: str,
                   promoted: list[dict[str, Any]]) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..train.data import encode
    from ..train.evaluate import mean_loss

    s = night.settings.train_config(record["model"], run_dir / "train", run_dir / "mix.jsonl")
    fraction = s.heldout_for(s.phases[0])  # the trainer's own split of tonight's data
    tok = AutoTokenizer.from_pretrained(record["model"])

    def enc(convs: list[list[dict[str, str]]]) -> list:
        out = []
        for messages in convs:
            e = encode(tok, messages)
            if 0 < len(e) <= s.max_seq_len and e.loss_tokens:
                out.append(e)
        return out

    sets: dict[str, list] = {"tonight": enc([r["messages"] for r in _heldout(read_jsonl(run_dir / "new.jsonl"),
                                                                              fraction)])}
    for run in promoted:
        if run["id"] != record["id"] and (run.get("datasets") or {}).get("new"):
            rows = _heldout(current_rows(run, record["leaf_hashes"]), fraction)
            sets[run["id"]] = enc([r["messages"] for r in rows])
    seeds = []
    for leaf in record["leaves_regenerated"]:
        qna = night.taxonomy / leaf / "qna.yaml"
        if qna.is_file():
            report = check_file(f"{leaf}/qna.yaml", qna.read_bytes(), night.checker)
            if isinstance(report.data, dict):
                seeds += seed_conversations(report.data)
    sets["seeds"] = enc(seeds)
    losses: dict[str, dict[str, float | None]] = {}
    vocab = 0
    for name, path in (("new", record["model"]), ("parent", start)):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        vocab = vocab or model.config.vocab_size
        losses[name] = {k: mean_loss(model, v, s.max_tokens_per_batch, chunk_tokens=s.loss_chunk_tokens) if v
                        else None for k, v in sets.items()}
        del model
    non_finite = sorted(k for k, v in losses["new"].items() if v is not None and not math.isfinite(v))
    earlier = [k for k in sets if k not in ("tonight", "seeds")]
    metrics = {
        "heldout_loss": {"tonight": losses["new"]["tonight"], "tonight_parent": losses["parent"]["tonight"],
                         **{k: losses["new"][k] for k in earlier}},
        "parent_loss": {k: losses["parent"][k] for k in earlier},
        "forgetting": {k: _minus(losses["new"][k], losses["parent"][k]) for k in earlier if sets[k]},
        "seed_loss": {"new": losses["new"]["seeds"], "parent": losses["parent"]["seeds"]},
        "sizes": {k: len(v) for k, v in sets.items()},
        "uniform_loss": math.log(vocab) if vocab else None,
    }
    metrics = _finite(metrics)
    metrics["non_finite"] = non_finite  # measured and not finite: a broken model, never "nothing to compare"
    atomic_write_json(run_dir / "eval.json", metrics)
    return metrics


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _finite(obj: Any) -> Any:
    """Non-finite numbers are not JSON: written as null, and named in ``non_finite`` by the caller."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
