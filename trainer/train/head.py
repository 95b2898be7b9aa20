"""The vocabulary head and its loss, in chunks of positions: full-vocabulary logits for a whole micro-batch
never exist at once.

With a 49 k vocabulary the head is most of a small model's cost and of its activation memory: 2,048 labelled
tokens hold 400 MB of fp32 logits, another 400 MB of log-softmax kept for the backward, and a teacher's as
much again. Here the loss is taken ``chunk_tokens`` positions at a time, and its gradient with respect to
the hidden states and the head weight is computed in the same pass (the fused linear cross-entropy of
Liger-Kernel and Cut Cross-Entropy, in plain torch so it runs on every device): nothing is recomputed, and
what stays for the backward is one [N, H] gradient and one [V, H] weight gradient.

The loss is any function of a chunk's logits, so SFT, online and top-k distillation and DAE share this one
head: :func:`chunked_head_loss` takes ``chunk_loss(logits [n, V], rows: slice) -> (sum, terms)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .batch import model_inputs
from .data import IGNORE

ChunkLoss = Callable[[torch.Tensor, slice], tuple[torch.Tensor, dict[str, torch.Tensor]]]


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


def hidden_at(model: Any, batch: dict[str, Any], keep: torch.Tensor, **extra: Any) -> tuple[torch.Tensor, Any]:
    """(the final hidden states at positions ``keep`` [B, K, H], the model's output) from one forward of the
    whole model (so DDP's and accelerate's wrappers run as usual) that asks for no logits at all. The hidden
    states are the decoder's output (after its final norm), taken by a hook: what the head would read."""
    seen: list[torch.Tensor] = []
    handle = unwrapped(model).get_decoder().register_forward_hook(lambda _m, _a, out: seen.append(out[0]))
    try:
        out = forward(model, batch, keep=keep[:0], **extra)  # logits [B, 0, V]
    finally:
        handle.remove()
    hidden = seen[-1]
    return hidden[:, keep.to(hidden.device)], out


def unwrapped(model: Any) -> Any:
    """The causal LM inside DDP's (``.module``) wrapper."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return model


def head_weight(model: Any) -> torch.Tensor | None:
    """The head's [V, H] weight when the chunked path can use it: a plain bias-free linear head whose weight
    is a whole tensor (an FSDP2-sharded one is a DTensor, gathered only inside the model's own forward)."""
    head = unwrapped(model).get_output_embeddings()
    if type(head) is not torch.nn.Linear or head.bias is not None:
        return None
    weight = head.weight
    try:
        from torch.distributed.tensor import DTensor

        if isinstance(weight, DTensor):
            return None
    except ImportError:  # pragma: no cover - every torch this project supports has it
        pass
    return weight


def chunked_head_loss(hidden: torch.Tensor, weight: torch.Tensor, chunk_loss: ChunkLoss,
                      chunk_tokens: int) -> tuple[torch.Tensor, dict[str, float]]:
    """(Σ over chunks of ``chunk_loss``, its named terms summed) for hidden states [N, H] and head weight
    [V, H]; the first is a scalar whose gradient reaches ``hidden`` and ``weight``. Equal to
    ``chunk_loss(hidden @ weight.T, slice(0, N))`` (to float rounding) with at most ``chunk_tokens`` rows of
    logits alive at a time."""
    terms: dict[str, float] = {}
    if not (torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)):
        total = hidden.new_zeros((), dtype=torch.float32)
        for rows in _chunks(hidden.shape[0], chunk_tokens):
            part, named = chunk_loss(hidden[rows] @ weight.to(hidden.dtype).T, rows)
            total = total + part.float()
            _add(terms, named)
        return total, terms
    return _FusedHead.apply(hidden, weight, chunk_loss, chunk_tokens, terms), terms


def _chunks(n: int, size: int) -> list[slice]:
    size = max(1, size)
    return [slice(a, min(a + size, n)) for a in range(0, n, size)]


def _add(terms: dict[str, float], named: dict[str, torch.Tensor]) -> None:
    for k, v in named.items():
        terms[k] = terms.get(k, 0.0) + float(v.detach())


class _FusedHead(torch.autograd.Function):
    """Forward: per chunk, logits = h·Wᵀ, the loss, and at once its gradient dz [n, V] (autograd on the loss
    alone), turned into dh = dz·W [n, H] and dW += dzᵀ·h [V, H]. Backward: those, times the incoming scale."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, chunk_loss: ChunkLoss, chunk_tokens: int,
                terms: dict[str, float]) -> torch.Tensor:
        w = weight.detach().to(hidden.dtype)
        grad_h = torch.zeros_like(hidden) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if ctx.needs_input_grad[1] \
            else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for rows in _chunks(hidden.shape[0], chunk_tokens):
            h = hidden[rows].detach()
            with torch.enable_grad():
                z = (h @ w.T).requires_grad_()  # [n, V]
                part, named = chunk_loss(z, rows)
                (dz,) = torch.autograd.grad(part, z)
            total += part.detach().float()
            _add(terms, named)
            if grad_h is not None:
                grad_h[rows] = dz @ w
            if grad_w is not None:
                grad_w.addmm_(dz.T.float(), h.float())
            del z, dz, part
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx: Any, scale: torch.Tensor) -> tuple[Any, ...]:
        grad_h, grad_w = ctx.saved_tensors  # ours alone and used once: scaled in place, no second [V, H]
        dh = grad_h.mul_(scale.to(grad_h.dtype)) if grad_h is not None else None
        dw = grad_w.mul_(scale).to(ctx.weight_dtype) if grad_w is not None else None
        return dh, dw, None, None, None
