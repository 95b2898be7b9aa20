"""Setup before any weights load: tokenise every phase, split held-out, plan the steps, estimate memory.

Why all phases up front: held-out samples of *every* phase are kept out of *every* phase's training data
(a later phase replays earlier data, and a replayed held-out sample must not train), and ``--dry-run``
can show the whole run's plan in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import TrainConfig, TrainConfigError
from .data import DataError, PhaseData, heldout_keys, line_limit, load_phase
from .packing import Step, padding_of, plan


@dataclass
class Prepared:
    config: TrainConfig
    tokenizer: Any
    data: list[PhaseData] = field(default_factory=list)
    plans: list[list[Step]] = field(default_factory=list)


def load_tokenizer(model: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as exc:
        raise TrainConfigError(f"model: cannot load the tokenizer of {model}: {exc}") from None
    if not getattr(tok, "is_fast", False):
        raise TrainConfigError(f"model: {model}'s tokenizer is not a fast tokenizer (tokenizer.json); the label "
                               "mask needs character offsets")
    if not tok.chat_template:
        raise TrainConfigError(f"model: {model} has no chat template")
    return tok


def prepare(config: TrainConfig, *, world: int = 1, tokenizer: Any = None) -> Prepared:
    """Tokenise and filter every phase, then plan its steps for ``world`` ranks."""
    tok = tokenizer if tokenizer is not None else load_tokenizer(config.model)
    never = set()
    for p in config.phases:
        never |= heldout_keys(Path(p.data), config.heldout_for(p), line_limit(config.max_seq_len))
    out = Prepared(config, tok)
    for p in config.phases:
        try:
            data = load_phase(p.name, Path(p.data), tok, max_seq_len=config.max_seq_len,
                              min_tokens=config.min_sample_tokens, heldout_fraction=config.heldout_for(p),
                              unmask_all=p.unmask, never_train=never)
        except DataError as exc:
            raise TrainConfigError(f"phase {p.name}: {exc}") from None
        if not data.train:
            raise TrainConfigError(f"phase {p.name}: no training sample left in {p.data} after the filters "
                                   f"({_dropped(data)}); check max_seq_len and the file")
        out.data.append(data)
        lengths = [len(s) for s in data.train]
        out.plans.append(plan(lengths, effective_batch=p.effective_batch, epochs=p.epochs, seed=config.seed,
                              max_tokens=config.max_tokens_per_batch, packing=config.packing, world=world,
                              max_steps=p.max_steps))
    return out


def _dropped(data: PhaseData) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(data.dropped.items())) or "none dropped"


def param_count(model: str) -> tuple[int, Any]:
    """Parameters of the model in ``model`` counted on the meta device (no weights read), and its config."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(model)
    with torch.device("meta"):
        m = AutoModelForCausalLM.from_config(cfg)
    return sum(p.numel() for p in m.parameters()), cfg


def memory_estimate(params: int, cfg: Any, config: TrainConfig, device: str) -> dict[str, float]:
    """GiB for weights, gradients, AdamW state and activations of one micro-batch (rough: activations are
    ~34·h bytes per token per layer in bf16 without recomputation, plus the fp32 logits)."""
    gib = 1024**3
    bf16 = device == "cuda" and config.dtype in ("auto", "bfloat16")
    mixed = bf16 and config.dtype == "auto"  # fp32 master weights under bf16 autocast
    wbytes = 2 if (bf16 and not mixed) else 4
    h = getattr(cfg, "hidden_size", 0)
    layers = getattr(cfg, "num_hidden_layers", 0)
    vocab = getattr(cfg, "vocab_size", 0)
    tokens = config.max_tokens_per_batch
    act_per_layer = (34 * h * tokens) * (2 if bf16 else 4) / 2
    if config.gradient_checkpointing:
        act_per_layer = h * tokens * (2 if bf16 else 4)
    est = {
        "weights": params * wbytes / gib,
        "gradients": params * wbytes / gib,
        "optimizer": params * 8 / gib,
        "activations": (act_per_layer * layers + tokens * vocab * 4 * 2) / gib,
    }
    est["total"] = sum(est.values())
    return est


def plan_rows(prep: Prepared) -> list[dict[str, Any]]:
    """One row per phase for ``--dry-run``: what will be trained and how."""
    rows = []
    for p, data, steps in zip(prep.config.phases, prep.data, prep.plans, strict=True):
        lengths = [len(s) for s in data.train]
        micro = [len(s.ranks[0]) for s in steps]
        padding = sum(padding_of(list(m), lengths, prep.config.packing) for s in steps for m in s.ranks[0])
        rows.append({
            "phase": p.name,
            "samples_read": data.read,
            "train_samples": len(data.train),
            "heldout_samples": len(data.heldout),
            "dropped": dict(data.dropped),
            "train_tokens": data.tokens("train"),
            "loss_tokens": sum(s.loss_tokens for s in data.train),
            "optimizer_steps": len(steps),
            "micro_batches_per_step": (min(micro), max(micro)) if micro else (0, 0),
            "padding_tokens": padding,
        })
    return rows
