"""Distillation losses ("A Teacher Is Worth A Million Instructions"): pure functions of tensors.

``labels`` follow the Hugging Face convention: same positions as ``input_ids``, -100 where no loss. The
logits at position t predict token t+1, so prediction losses compare distributions at the positions t with
``labels[t + 1] != -100`` (the reference code compared at ``labels[t]``: off by one). N is the number of
those positions in the batch. Teachers are always detached: gradients reach only the student.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

IGNORE = -100
_FLOOR = 1e-12  # inside the log of attention probabilities


def response_positions(labels: torch.Tensor) -> torch.Tensor:
    """[B, T] bool: position t predicts a response token (``labels[t + 1] != -100``); the last never does."""
    mask = torch.zeros_like(labels, dtype=torch.bool)
    mask[:, :-1] = labels[:, 1:] != IGNORE
    return mask


def prediction_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """``τ² · (1/N) · Σ_t KL(softmax(z_T/τ) ‖ softmax(z_S/τ))`` over response positions (forward KL).

    student_logits, teacher_logits: [B, T, V]; labels: [B, T]. Returns a scalar (0 when N = 0).
    """
    return masked_kl(student_logits, teacher_logits, response_positions(labels), temperature)


def masked_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
              temperature: float = 1.0) -> torch.Tensor:
    """:func:`prediction_kl` over the positions where ``mask`` [B, T] is true (logits [B, T, V]): the form the
    training step uses, whose logits hold only the labelled positions."""
    n = mask.sum()
    if n == 0:
        return student_logits.sum() * 0.0
    return temperature**2 * kl_sum(student_logits[mask], teacher_logits[mask], temperature) / n


def kl_sum(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``Σ_n KL(softmax(z_T/τ) ‖ softmax(z_S/τ))`` over rows of logits [N, V], in fp32 (no τ², no mean: the
    chunked head adds chunks' sums)."""
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)  # [N, V]
    t = F.log_softmax(teacher_logits.detach().float() / temperature, dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="sum")  # Σ exp(t)·(t − s), one fused kernel


def topk_prediction_kl(
    student_logits: torch.Tensor,
    topk_ids: torch.Tensor,
    topk_logprobs: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """:func:`prediction_kl` with the teacher given as its top-k per position (offline distillation).

    student_logits: [B, T, V]; topk_ids: [B, T, k] (int); topk_logprobs: [B, T, k], the teacher's
    log-probabilities at temperature τ. The teacher's top-k is renormalised to sum to 1; the student's full
    log-softmax is gathered at those ids. With k = V this equals :func:`prediction_kl`.
    """
    return masked_topk_kl(student_logits, topk_ids, topk_logprobs, response_positions(labels), temperature)


def masked_topk_kl(student_logits: torch.Tensor, topk_ids: torch.Tensor, topk_logprobs: torch.Tensor,
                   mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """:func:`topk_prediction_kl` over the positions where ``mask`` [B, T] is true."""
    n = mask.sum()
    if n == 0:
        return student_logits.sum() * 0.0
    return temperature**2 * topk_kl_sum(student_logits[mask], topk_ids[mask], topk_logprobs[mask], temperature) / n


def topk_kl_sum(student_logits: torch.Tensor, topk_ids: torch.Tensor, topk_logprobs: torch.Tensor,
                temperature: float = 1.0) -> torch.Tensor:
    """:func:`kl_sum` with the teacher as its renormalised top-k: logits [N, V], ids and log-probs [N, k]."""
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)  # [N, V]
    t = topk_logprobs.detach().float()
    t = t - torch.logsumexp(t, dim=-1, keepdim=True)  # renormalise the top-k
    return (t.exp() * (t - s.gather(-1, topk_ids.long()))).sum()


def layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """Student layer i (0-based) -> teacher layer ``floor((i + 1) * L_T / L_S) - 1`` (uniform, last to last)."""
    return [(i + 1) * teacher_layers // student_layers - 1 for i in range(student_layers)]


def attention_kl(
    student_attentions: Sequence[torch.Tensor], teacher_attentions: Sequence[torch.Tensor], labels: torch.Tensor
) -> torch.Tensor:
    """Mean over layers, heads and response rows of ``Σ_k A_T log(A_T / A_S)`` (keys k ≤ q).

    Each attention is a tuple (one per layer) of post-softmax maps [B, H, T, T], as ``output_attentions=True``
    returns with eager attention. Rows are the queries q with ``labels[q] != -100``. Head-averaged maps are
    compared when head counts differ, per head otherwise; ``0 log 0 = 0``, with a small floor inside the log.
    """
    rows = labels != IGNORE  # [B, T]
    n = rows.sum()
    if n == 0 or not student_attentions:
        return student_attentions[0].sum() * 0.0 if student_attentions else torch.zeros(())
    T = labels.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=labels.device).tril()
    total = student_attentions[0].new_zeros((), dtype=torch.float32)
    heads_compared = 0
    for i, j in enumerate(layer_map(len(student_attentions), len(teacher_attentions))):
        a_s = student_attentions[i].float()
        a_t = teacher_attentions[j].detach().float()
        if a_s.shape[1] != a_t.shape[1]:
            a_s, a_t = a_s.mean(1, keepdim=True), a_t.mean(1, keepdim=True)
        a_t = a_t * causal
        term = a_t * (torch.log(a_t.clamp_min(_FLOOR)) - torch.log(a_s.clamp_min(_FLOOR)))  # [B, H, T, T]
        per_row = term.sum(-1)  # [B, H, T]
        total = total + (per_row * rows[:, None, :]).sum()
        heads_compared = a_s.shape[1]
    return total / (len(student_attentions) * heads_compared * n)


def dae_targets(expert_logits: torch.Tensor, reference_logits: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
    """Per-token target logits for Domain Alignment from Expert: the expert's where the token belongs to a
    domain sample, the reference model's elsewhere. logits [B, T, V]; domain [B, T] bool."""
    return torch.where(domain[..., None], expert_logits.detach(), reference_logits.detach())


def total_loss(
    ce: torch.Tensor, lam: float, pred: torch.Tensor | None = None, attn: torch.Tensor | None = None,
    w_pred: float = 1.0, w_attn: float = 0.0,
) -> torch.Tensor:
    """``(1 - λ)·CE + λ·(w_pred·L_pred + w_attn·L_attn)`` (DAE: pass ``L_DAE`` as ``pred`` with w_pred 1)."""
    kd = ce.new_zeros(())
    if pred is not None and w_pred:
        kd = kd + w_pred * pred
    if attn is not None and w_attn:
        kd = kd + w_attn * attn
    return (1 - lam) * ce + lam * kd
