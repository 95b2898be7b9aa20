"""Mean token loss of a model on encoded samples: the one evaluation that training (held-out splits,
forgetting) and the nightly job (tonight's data, earlier nights, seed examples) share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .batch import collate_packed
from .config import LOSS_CHUNK_TOKENS
from .data import Encoded
from .loss import sft_loss
from .packing import pack


@torch.no_grad()
def loss_sums(model: Any, samples: Sequence[Encoded], max_tokens: int, device: torch.device | str,
              autocast: Any = None, chunk_tokens: int = LOSS_CHUNK_TOKENS) -> tuple[float, int]:
    """(summed token loss, loss tokens) over ``samples``, packed into rows of at most ``max_tokens``; the
    training step's own loss (``chunk_tokens`` as in :func:`.loss.sft_loss`)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    lengths = [len(s) for s in samples]
    for group in pack(range(len(samples)), lengths, max_tokens):
        batch = collate_packed([samples[i] for i in sorted(group)])
        with autocast() if autocast is not None else torch.autocast("cpu", enabled=False):
            step = sft_loss(model, batch, chunk_tokens)
        total += float(step.total)
        count += step.tokens
    if was_training:
        model.train()
    return total, count


def mean_loss(model: Any, samples: Sequence[Encoded], max_tokens: int = 4096, device: torch.device | str = "cpu",
              chunk_tokens: int = LOSS_CHUNK_TOKENS) -> float:
    """Mean token loss (nan when there is nothing to measure)."""
    total, count = loss_sums(model, samples, max_tokens, device, chunk_tokens=chunk_tokens)
    return total / count if count else float("nan")
