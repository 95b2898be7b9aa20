"""Mean token loss of a model on encoded samples: the one evaluation that training (held-out splits,
forgetting) and the nightly job (tonight's data, earlier nights, seed examples) share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .batch import collate_packed
from .data import IGNORE, Encoded
from .loss import forward, labelled_positions, token_ce
from .packing import pack


@torch.no_grad()
def loss_sums(model: Any, samples: Sequence[Encoded], max_tokens: int, device: torch.device | str,
              autocast: Any = None) -> tuple[float, int]:
    """(summed token loss, loss tokens) over ``samples``, packed into rows of at most ``max_tokens``."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    lengths = [len(s) for s in samples]
    for group in pack(range(len(samples)), lengths, max_tokens):
        batch = collate_packed([samples[i] for i in sorted(group)])
        keep = labelled_positions(batch["targets"])
        with autocast() if autocast is not None else torch.autocast("cpu", enabled=False):
            out = forward(model, batch, keep=keep)
        targets = batch["targets"][:, keep].to(out.logits.device)
        total += float(token_ce(out.logits, targets))
        count += int((targets != IGNORE).sum())
    if was_training:
        model.train()
    return total, count


def mean_loss(model: Any, samples: Sequence[Encoded], max_tokens: int = 4096, device: torch.device | str = "cpu"
              ) -> float:
    """Mean token loss (nan when there is nothing to measure)."""
    total, count = loss_sums(model, samples, max_tokens, device)
    return total / count if count else float("nan")
