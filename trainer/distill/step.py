"""The distillation loss step for ``labrador train``: the same loop, packing and checkpoints as SFT.

Per micro-batch: the student's forward (with attention maps when ``attention`` > 0), the teacher targets
(online teacher under ``no_grad`` in eval mode, the offline top-k cache, or DAE's expert/reference chosen per
sample), then ``(1 - λ)·CE + λ·(w_pred·L_pred + w_attn·L_attn)``. The loop wants sums over the micro-batch's
loss tokens, so the per-token mean is multiplied by their count.
"""

from __future__ import annotations

from typing import Any

import torch

from labrador.trainer.devices import fast_dtype
from labrador.trainer.train.batch import labels_from_targets, sample_rows
from labrador.trainer.train.head import chunked_head_loss, forward, head_weight, hidden_at, labelled_positions
from labrador.trainer.train.loss import StepLoss, token_ce

from .config import DistillConfig
from .losses import attention_kl, dae_targets, kl_sum, masked_kl, masked_topk_kl, topk_kl_sum, total_loss


def load_frozen_model(path: str, device: torch.device, *, eager: bool = False) -> Any:
    """A frozen teacher: eval mode, no gradients, bf16 where the device computes it natively (its targets are
    soft distributions, taken in fp32 by the losses)."""
    from transformers import AutoModelForCausalLM

    from labrador.trainer.train.attention import register

    dtype = getattr(torch, fast_dtype(device.type))
    attn = "eager" if eager else register()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=attn).to(device)
    model.eval()
    model.requires_grad_(False)
    return model


def domain_mask(batch: dict[str, Any], dc: DistillConfig) -> torch.Tensor:
    """[B, T] bool: tokens of the micro-batch's domain samples (DAE)."""
    assert dc.dae is not None
    mask = torch.zeros(batch["targets"].shape, dtype=torch.bool)
    for meta, (r, a, b) in zip(batch["sample_meta"], sample_rows(batch), strict=True):
        if dc.dae.is_domain(meta):
            mask[r, a:b] = True
    return mask


def make_loss_factory(dc: DistillConfig):  # -> trainer.train.loop.LossStepFactory
    """A factory the training loop calls once per phase with (config, accelerator)."""

    def factory(config: Any, accelerator: Any):
        device = accelerator.device
        attn = dc.attention > 0
        teachers: dict[str, Any] = {}
        cache = None
        if dc.dae is not None:
            teachers = {"expert": load_frozen_model(dc.dae.expert, device),
                        "reference": load_frozen_model(dc.dae.reference, device)}
        elif dc.offline:
            from .cache import TopKCache

            cache = TopKCache(dc.teacher_cache)
        else:
            teachers = {"teacher": load_frozen_model(dc.teacher_model, device, eager=attn)}

        def chunked(model: torch.nn.Module, batch: dict[str, Any], weight: torch.Tensor) -> StepLoss:
            # hidden states at the labelled positions [N, H] for the student and every teacher; the heads
            # and the losses then run config.loss_chunk_tokens positions at a time
            keep = labelled_positions(batch["targets"])
            extra = {"output_attentions": True} if attn else {}
            hidden, out = hidden_at(model, batch, keep, **extra)
            full_targets = batch["targets"].to(hidden.device)
            targets = full_targets[:, keep.to(hidden.device)]  # [B, K]
            mask = targets != -100
            labels, n = targets[mask], int(mask.sum())  # [N]
            with torch.no_grad():
                if cache is not None:
                    ids, lps = cache.batch_targets(batch, sample_rows(batch))  # [B, T, k]
                    k = keep.to(ids.device)
                    ids, lps = ids[:, k].to(hidden.device)[mask], lps[:, k].to(hidden.device)[mask]  # [N, k]
                else:
                    sources = {name: hidden_at(t, batch, keep, **extra) for name, t in teachers.items()}
                    t_hidden = {name: h[mask.to(h.device)].to(hidden.device) for name, (h, _) in sources.items()}
                    t_weight = {name: head_weight(t) for name, t in teachers.items()}
                    if dc.dae is not None:
                        domain = domain_mask(batch, dc)[:, keep].to(hidden.device)[mask]  # [N]

            def teacher_logits(name: str, rows: slice) -> torch.Tensor:
                return t_hidden[name][rows] @ t_weight[name].to(t_hidden[name].dtype).T  # [n, V]

            def chunk_loss(z: torch.Tensor, rows: slice) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
                ce = torch.nn.functional.cross_entropy(z.float(), labels[rows], reduction="sum")
                with torch.no_grad():
                    if cache is None and dc.dae is not None:
                        target = dae_targets(teacher_logits("expert", rows), teacher_logits("reference", rows),
                                             domain[rows])
                    elif cache is None:
                        target = teacher_logits("teacher", rows)
                if cache is not None:
                    kl = topk_kl_sum(z, ids[rows], lps[rows], dc.temperature)
                else:
                    kl = kl_sum(z, target, dc.temperature)
                pred = dc.temperature**2 * kl
                return total_loss(ce, dc.lam, pred, None, dc.prediction), {"loss_ce": ce, "loss_pred": pred}

            total, terms = chunked_head_loss(hidden[mask], weight, chunk_loss, config.loss_chunk_tokens)
            if attn:
                att = attention_kl(out.attentions, sources["teacher"][1].attentions,
                                   labels_from_targets(full_targets))
                total = total + dc.lam * dc.attention * att * n
                terms["loss_attn"] = float(att.detach()) * n
            return StepLoss(total, n, terms)

        teachers_whole = all(head_weight(t) is not None for t in teachers.values())  # frozen: asked once

        def step(model: torch.nn.Module, batch: dict[str, Any]) -> StepLoss:
            weight = head_weight(model) if config.loss_chunk_tokens > 0 else None
            if weight is not None and teachers_whole:
                return chunked(model, batch, weight)
            # logits only at the labelled positions [K], for the student and every teacher: [B, K, V]
            keep = labelled_positions(batch["targets"])
            extra = {"output_attentions": True} if attn else {}
            out = forward(model, batch, keep=keep, **extra)
            full_targets = batch["targets"].to(out.logits.device)
            targets = full_targets[:, keep.to(full_targets.device)]  # [B, K]
            mask = targets != -100  # the prediction losses' positions, in the kept space
            n = int(mask.sum())
            ce = token_ce(out.logits, targets)
            pred = att = None
            with torch.no_grad():
                if cache is not None:
                    ids, lps = cache.batch_targets(batch, sample_rows(batch))  # [B, T, k]
                elif dc.dae is not None:
                    e = forward(teachers["expert"], batch, keep=keep).logits
                    r = forward(teachers["reference"], batch, keep=keep).logits
                    target_logits = dae_targets(e, r, domain_mask(batch, dc)[:, keep].to(e.device))
                else:
                    t_out = forward(teachers["teacher"], batch, keep=keep, **extra)
                    target_logits = t_out.logits
            if cache is not None:
                device = out.logits.device
                pred = masked_topk_kl(out.logits, ids.to(device)[:, keep.to(device)],
                                      lps.to(device)[:, keep.to(device)], mask, dc.temperature)
            else:
                pred = masked_kl(out.logits, target_logits.to(out.logits.device), mask, dc.temperature)
            if attn:
                att = attention_kl(out.attentions, t_out.attentions, labels_from_targets(full_targets))
            mean = total_loss(ce / max(n, 1), dc.lam, pred, att, dc.prediction, dc.attention)
            terms = {"loss_ce": float(ce.detach()), "loss_pred": float(pred.detach()) * n}
            if attn:
                terms["loss_attn"] = float(att.detach()) * n
            return StepLoss(mean * n, n, terms)

        return step

    return factory
