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

from .data import IGNORE
from .head import chunked_head_loss, forward, head_weight, hidden_at, labelled_positions


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


def sft_loss(model: torch.nn.Module, batch: dict[str, Any], chunk_tokens: int = 0) -> StepLoss:
    """Plain supervised fine-tuning: cross-entropy on the reply tokens, whose logits alone are computed (a
    49 k vocabulary makes the head most of a small model's cost and activation memory); ``chunk_tokens`` > 0
    takes them that many at a time (:mod:`.head`), so a whole micro-batch's logits never exist at once."""
    keep = labelled_positions(batch["targets"])
    weight = head_weight(model) if chunk_tokens > 0 else None
    if weight is None:
        out = forward(model, batch, keep=keep)
        targets = batch["targets"][:, keep].to(out.logits.device)  # [B, K]
        ce = token_ce(out.logits, targets)
        n = int((targets != IGNORE).sum())
        return StepLoss(ce, n, {"loss_ce": float(ce.detach())})
    hidden, _ = hidden_at(model, batch, keep)  # [B, K, H]
    targets = batch["targets"][:, keep].to(hidden.device)
    mask = targets != IGNORE
    labels = targets[mask]  # [N]

    def chunk_ce(logits: torch.Tensor, rows: slice) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ce = F.cross_entropy(logits.float(), labels[rows], reduction="sum")
        return ce, {"loss_ce": ce}

    total, terms = chunked_head_loss(hidden[mask], weight, chunk_ce, chunk_tokens)
    return StepLoss(total, int(labels.numel()), terms)
