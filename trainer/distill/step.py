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
from labrador.trainer.train.loss import StepLoss, forward, labelled_positions, token_ce

from .config import DistillConfig
from .losses import attention_kl, dae_targets, masked_kl, masked_topk_kl, total_loss


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

        def step(model: torch.nn.Module, batch: dict[str, Any]) -> StepLoss:
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
