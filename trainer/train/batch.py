"""Micro-batch tensors from encoded samples (torch).

Packed: one row ``[1, T]`` of concatenated samples, ``position_ids`` restarting at 0 for each sample and no
``attention_mask``: transformers then builds a block-diagonal causal mask from the position ids (SDPA,
eager, flex) or runs varlen flash-attention, so no token attends across samples. Padded: ``[B, L]`` with an
attention mask, the Hugging Face collator's layout (the baseline).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .data import IGNORE, Encoded


def collate_packed(samples: Sequence[Encoded]) -> dict[str, Any]:
    """``input_ids``, ``position_ids``, ``targets``: [1, sum(T_i)]; ``targets[t]`` is the next token's label."""
    ids: list[int] = []
    pos: list[int] = []
    tgt: list[int] = []
    for s in samples:
        ids += s.input_ids
        pos += range(len(s))
        tgt += s.targets
    return {
        "input_ids": torch.tensor([ids], dtype=torch.long),
        "position_ids": torch.tensor([pos], dtype=torch.long),
        "targets": torch.tensor([tgt], dtype=torch.long),
        "sample_keys": [s.key for s in samples],
        "sample_lengths": [len(s) for s in samples],
        "sample_meta": [{"leaf": s.leaf, **s.meta} for s in samples],
    }


def collate_padded(samples: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    """``input_ids``, ``attention_mask``, ``targets``: [B, L] right-padded to the longest sample."""
    longest = max(len(s) for s in samples)
    ids = torch.full((len(samples), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(samples), longest), dtype=torch.long)
    tgt = torch.full((len(samples), longest), IGNORE, dtype=torch.long)
    for b, s in enumerate(samples):
        n = len(s)
        ids[b, :n] = torch.tensor(s.input_ids)
        mask[b, :n] = 1
        tgt[b, :n] = torch.tensor(s.targets)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "targets": tgt,
        "sample_keys": [s.key for s in samples],
        "sample_lengths": [len(s) for s in samples],
        "sample_meta": [{"leaf": s.leaf, **s.meta} for s in samples],
    }


def sample_rows(batch: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(row, start, end) of every sample in a collated micro-batch: packed samples share row 0."""
    if "position_ids" in batch:
        out, start = [], 0
        for n in batch["sample_lengths"]:
            out.append((0, start, start + n))
            start += n
        return out
    return [(b, 0, n) for b, n in enumerate(batch["sample_lengths"])]


def labels_from_targets(targets: torch.Tensor) -> torch.Tensor:
    """Hugging Face labels [B, T] from next-token targets [B, T]: ``labels[t + 1] = targets[t]``, -100 first."""
    labels = torch.full_like(targets, -100)
    labels[:, 1:] = targets[:, :-1]
    return labels


def model_inputs(batch: dict[str, Any], device: torch.device | str) -> dict[str, torch.Tensor]:
    """The keyword arguments a causal LM's ``forward`` takes, on ``device``."""
    keys = ("input_ids", "position_ids", "attention_mask")
    return {k: batch[k].to(device) for k in keys if k in batch}
