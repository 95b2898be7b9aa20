"""Per-leaf numbers that need no judge: did the model learn a leaf's *held-out* seeds, and did it keep its
general ability?

- ``ref_nll``: mean nats per token of the held-out reference answer given its question (and context),
  teacher-forced through the model's own chat template, answer tokens only. Lower is better.
- ``rouge_l``: ROUGE-L F1 of the model's greedy answer against the reference (``rouge-score``). Higher is
  better.
- ``drift_nll``: mean nats per token, under the model, of the original base model's own greedy replies to
  fixed everyday prompts (nothing from any taxonomy): how far the model moved from what it was.

Models are loaded one at a time (fp32 on CPUs) and freed; the answers and losses come from the same
trainer code that trains (``encode``, ``loss_sums``), so a night measures what it optimised.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from labrador.validators.holdout import HeldOut

METRICS = ("ref_nll", "rouge_l", "judge")
LOWER_IS_BETTER = {"ref_nll": True, "rouge_l": False, "judge": False}
DRIFT_PROMPTS = 12  # fixed everyday prompts (trainer.students.chat_corpus), the base model's own greedy replies
DRIFT_TOKENS = 96


def parse_metrics(text: str) -> tuple[str, ...]:
    """``"ref_nll,rouge_l"`` -> names, each known; ValueError naming an unknown one."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise ValueError(f"unknown metric {unknown[0] if unknown else '(none)'}: choose from {', '.join(METRICS)}")
    return names


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 (``rouge-score``'s own, with its tokenizer and no stemming)."""
    return float(_rouge_scorer().score(reference, prediction)["rougeL"].fmeasure)


@cache
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


class LoadedModel:
    """One model folder in memory (fp32 on CPUs, eval mode) with its tokenizer."""

    def __init__(self, path: str | Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = str(path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.model = AutoModelForCausalLM.from_pretrained(self.path, dtype=torch.float32).to(device).eval()

    def nll(self, conversations: Sequence[list[dict[str, str]]]) -> list[tuple[float, int]]:
        """(summed nats, answer tokens) of each conversation's assistant turns, teacher-forced."""
        from labrador.trainer.train.data import encode
        from labrador.trainer.train.evaluate import loss_sums

        out = []
        for messages in conversations:
            e = encode(self.tokenizer, messages)
            out.append(loss_sums(self.model, [e], max(len(e), 1), self.device) if e.loss_tokens else (0.0, 0))
        return out

    def greedy(self, prompts: Sequence[str], max_new_tokens: int, batch_size: int = 16) -> list[str]:
        """The model's greedy answer to each user prompt, through its own chat template. Batches of 16: a night's
        11 held-out prompts (or 12 drift prompts) decode at once, 1.7x faster on 2 CPU cores than two batches of 8
        (23 s vs 39.5 s for 11 prompts of 128 tokens, the embedded model)."""
        import torch

        tok = self.tokenizer
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        answers: list[str] = []
        for i in range(0, len(prompts), batch_size):
            batch = prompts[i:i + batch_size]
            texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                             add_generation_prompt=True) for p in batch]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            with torch.no_grad():
                ids = self.model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                                          pad_token_id=tok.pad_token_id)
            answers += [tok.decode(row, skip_special_tokens=True).strip() for row in ids[:, enc["input_ids"].shape[1]:]]
        return answers


def _chat(prompt: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def measure(model: LoadedModel, items: Sequence[HeldOut], names: Iterable[str], max_new_tokens: int,
            drift_rows: Sequence[list[dict[str, str]]] = ()) -> dict[str, Any]:
    """``{"leaves": {leaf: {"ref_nll", "rouge_l", "answers"}}, "drift_nll"}`` for one model; a leaf's ``ref_nll``
    pools its held-out pairs' tokens."""
    names = set(names)
    leaves: dict[str, dict[str, Any]] = {}
    nll = model.nll([_chat(i.prompt, i.reference) for i in items]) if "ref_nll" in names else []
    answers = model.greedy([i.prompt for i in items], max_new_tokens) if "rouge_l" in names else []
    for k, item in enumerate(items):
        row = leaves.setdefault(item.leaf, {"_nats": 0.0, "_tokens": 0, "_rouge": [], "answers": []})
        if nll:
            row["_nats"] += nll[k][0]
            row["_tokens"] += nll[k][1]
        if answers:
            row["answers"].append(answers[k])
            row["_rouge"].append(rouge_l(answers[k], item.reference))
    out = {}
    for leaf, row in leaves.items():
        out[leaf] = {"answers": row["answers"]}
        if "ref_nll" in names:
            out[leaf]["ref_nll"] = round(row["_nats"] / row["_tokens"], 4) if row["_tokens"] else None
        if "rouge_l" in names:
            out[leaf]["rouge_l"] = round(sum(row["_rouge"]) / len(row["_rouge"]), 4) if row["_rouge"] else None
    drift = None
    if drift_rows:
        sums = model.nll(drift_rows)
        tokens = sum(t for _, t in sums)
        drift = round(sum(n for n, _ in sums) / tokens, 4) if tokens else None
    return {"leaves": out, "drift_nll": drift}


def drift_rows(base: str | Path, cache: Path | None = None,
               say: Callable[[str], None] = lambda text: None) -> list[list[dict[str, str]]]:
    """The base model's own greedy replies to :data:`DRIFT_PROMPTS` fixed everyday prompts, as chats; cached in
    ``cache`` (a JSON file, keyed by the base model's weights) so every night of a lineage measures the same."""
    from labrador.trainer.models.store import weights_digest
    from labrador.trainer.students.chat_corpus import chat_prompts
    from labrador.validators.atomic import atomic_write_json

    key = weights_digest(Path(base))
    if cache is not None and cache.is_file():
        try:
            stored = json.loads(cache.read_text(encoding="utf-8"))
            if stored.get("base") == key and stored.get("tokens") == DRIFT_TOKENS:
                return [_chat(p, a) for p, a in stored["replies"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    say(f"drift: the base model's greedy replies to {DRIFT_PROMPTS} everyday prompts (once per base model)")
    prompts = chat_prompts(DRIFT_PROMPTS)
    replies = LoadedModel(base).greedy(prompts, DRIFT_TOKENS)
    pairs = [(p, a) for p, a in zip(prompts, replies, strict=True) if a]
    if cache is not None:
        atomic_write_json(cache, {"base": key, "tokens": DRIFT_TOKENS, "replies": pairs})
    return [_chat(p, a) for p, a in pairs]


def compare(results: Mapping[str, Mapping[str, Any]], names: Iterable[str]) -> dict[str, Any]:
    """Per leaf and metric, each model's value and ``delta`` (candidate minus parent, and minus base when
    measured); ``drift`` likewise. ``results``: ``{"candidate"|"parent"|"base": measure(...)}``."""
    names = [n for n in names if n != "judge"]
    cand = results["candidate"]
    leaves: dict[str, dict[str, Any]] = {}
    for leaf in cand["leaves"]:
        row: dict[str, Any] = {}
        for name in names:
            values = {who: (r["leaves"].get(leaf) or {}).get(name) for who, r in results.items()}
            row[name] = {**values, "delta": _minus(values.get("candidate"), values.get("parent")),
                         "delta_base": _minus(values.get("candidate"), values.get("base"))}
        leaves[leaf] = row
    drift = {who: r.get("drift_nll") for who, r in results.items()}
    drift.update(delta=_minus(drift.get("candidate"), drift.get("parent")),
                 delta_base=_minus(drift.get("candidate"), drift.get("base")))
    return {"leaves": leaves, "drift": drift}


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 4)


def metric_verdict(row: Mapping[str, Any], min_nll_delta: float) -> str:
    """A leaf's verdict from its metrics alone: ``ref_nll`` when measured (lower is better, by at least
    ``min_nll_delta``), else ``rouge_l`` (by at least 0.05); ``unjudged`` when neither was measured."""
    nll = (row.get("ref_nll") or {}).get("delta")
    if nll is not None:
        return "improved" if nll <= -min_nll_delta else "regressed" if nll >= min_nll_delta else "unchanged"
    rouge = (row.get("rouge_l") or {}).get("delta")
    if rouge is not None:
        return "improved" if rouge >= 0.05 else "regressed" if rouge <= -0.05 else "unchanged"
    return "unjudged"


def model_vs_baseline(model: str, baseline: str, items: Sequence[HeldOut], names: Iterable[str],
                      max_new_tokens: int, progress: Callable[[str], None] = lambda stage: None) -> dict[str, Any]:
    """``labrador evaluate``'s judge-free half: ``{"leaves": {leaf: {NAME: {model, baseline, delta}}}, "drift":
    {model, baseline, delta}}``. Drift is measured on the baseline's own greedy replies to the everyday
    prompts (what the model moved away from)."""
    names = [n for n in names if n != "judge"]
    progress("drift")
    drift = drift_rows(baseline)
    out = {}
    for who, path in (("baseline", baseline), ("model", model)):
        progress(who)
        out[who] = measure(LoadedModel(path), items, names, max_new_tokens, drift)
    leaves = {}
    for leaf in out["model"]["leaves"]:
        leaves[leaf] = {n: {"model": out["model"]["leaves"][leaf].get(n),
                            "baseline": (out["baseline"]["leaves"].get(leaf) or {}).get(n)} for n in names}
        for row in leaves[leaf].values():
            row["delta"] = _minus(row["model"], row["baseline"])
    d = {"model": out["model"]["drift_nll"], "baseline": out["baseline"]["drift_nll"]}
    return {"leaves": leaves, "drift": {**d, "delta": _minus(d["model"], d["baseline"])}}
