"""The loss step: one micro-batch in, summed token losses out. The training loop takes any function of
this shape, so distillation adds a loss step, not a second loop.

Why sums, not means: the loop divides by the number of loss tokens in the whole effective batch (every
micro-batch, every rank), which makes gradient accumulation and packing exact: the same weights whatever
the micro-batching.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .batch import model_inputs
from .data import IGNORE


@dataclass
class StepLoss:
    """``total``: the summed loss to back-propagate (scalar); ``terms``: summed parts for the metrics log
    (``loss_ce``, ``loss_pred``...), detached; ``tokens``: loss tokens in this micro-batch."""

    total: torch.Tensor
    tokens: int
    terms: dict[str, float] = field(default_factory=dict)


LossStep = Callable[[torch.nn.Module, dict[str, Any]], StepLoss]


def token_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy. logits [B, T, V] (any float dtype; computed in fp32), targets [B, T] with -100."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE, reduction="sum")


def forward(model: torch.nn.Module, batch: dict[str, Any], keep: torch.Tensor | None = None, **extra: Any) -> Any:
    """Run a causal LM on a micro-batch (no KV cache: a cache would disable the packed-sequence mask).
    ``keep`` [K] (positions along T): project only those hidden states to the vocabulary, so ``logits`` is
    [B, K, V] instead of [B, T, V] (transformers' ``logits_to_keep``)."""
    device = next(model.parameters()).device
    if keep is not None:
        extra["logits_to_keep"] = keep.to(device)
    return model(**model_inputs(batch, device), use_cache=False, **extra)


def labelled_positions(targets: torch.Tensor) -> torch.Tensor:
    """[K] the positions along T where any row of ``targets`` [B, T] has a label: the only places a loss reads
    logits. A packed micro-batch is one row, so K is its reply tokens; padded rows share the union."""
    return (targets != IGNORE).any(0).nonzero().squeeze(1)


def sft_loss(model: torch.nn.Module, batch: dict[str, Any]) -> StepLoss:
    """Plain supervised fine-tuning: cross-entropy on the reply tokens, whose logits alone are computed (a
    49 k vocabulary makes the head most of a small model's cost and activation memory)."""
    keep = labelled_positions(batch["targets"])
    out = forward(model, batch, keep=keep)
    targets = batch["targets"][:, keep].to(out.logits.device)  # [B, K]
    ce = token_ce(out.logits, targets)
    n = int((targets != IGNORE).sum())
    return StepLoss(ce, n, {"loss_ce": float(ce.detach())})
