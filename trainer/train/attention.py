"""Variable-length attention for packed rows where flash-attention is not installed (CPU, plain GPUs).

Why: transformers handles a packed row without flash-attention by materialising a block-diagonal
``[T, T]`` mask, so attention costs ``T²`` for the whole row instead of ``Σ Tᵢ²`` per sample, which makes
packing slower than padding on small models. This runs causal SDPA on each sample's slice of the row
(boundaries where ``position_ids`` restart at 0), so no token can see another sample and no work is spent
on cross-sample pairs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

NAME = "sdpa_varlen"


def boundaries(position_ids: torch.Tensor) -> list[int]:
    """Start offsets of the samples in a packed row, plus its length. position_ids: [1, T]."""
    starts = (position_ids[0] == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    return [*starts, position_ids.shape[-1]]


def varlen_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    position_ids: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """query [1, H, T, D], key/value [1, Hkv, T, D] -> ([1, T, H, D], None): causal attention per sample."""
    if position_ids is None or query.shape[0] != 1 or attention_mask is not None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      position_ids=position_ids, **kwargs)
    edges = boundaries(position_ids)
    gqa = query.shape[1] != key.shape[1]
    parts = [
        F.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], is_causal=True,
                                       dropout_p=dropout, scale=scaling, enable_gqa=gqa)
        for a, b in zip(edges[:-1], edges[1:], strict=True)
        if b > a
    ]
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


def register() -> str:
    """Make ``attn_implementation="sdpa_varlen"`` available to transformers models; returns the name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, flash_attention_mask

    AttentionInterface.register(NAME, varlen_sdpa)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, flash_attention_mask)  # no [T, T] mask: boundaries come from positions
    return NAME
