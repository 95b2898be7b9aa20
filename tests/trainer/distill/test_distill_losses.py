"""The distillation losses as pure functions: zero when the student is the teacher, positive otherwise, the
off-by-one pinned, top-k with k = V equal to the full KL, attention KL by hand on a 2x2 case."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from labrador.trainer.distill.losses import (  # noqa: E402
    attention_kl,
    dae_targets,
    layer_map,
    prediction_kl,
    topk_prediction_kl,
    total_loss,
)

IGN = -100


def logits(seed, shape=(2, 6, 11)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


LABELS = torch.tensor([[IGN, IGN, 5, 3, IGN, IGN], [IGN, 1, 2, IGN, IGN, 7]])


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_prediction_kl_zero_on_equal_positive_otherwise(tau):
    s = logits(0)
    assert float(prediction_kl(s, s.clone(), LABELS, tau)) == pytest.approx(0.0, abs=1e-6)
    assert float(prediction_kl(s, logits(1), LABELS, tau)) > 0.01


def test_prediction_kl_uses_the_positions_that_predict_a_reply_token():
    """Position t predicts token t+1: with labels set at 2, 3 (row 0) only positions 1, 2 count."""
    s, t = logits(0), logits(1)
    by_hand, n = 0.0, 0
    for b in range(2):
        for pos in range(5):
            if LABELS[b, pos + 1] != IGN:
                p_t = F.softmax(t[b, pos], -1)
                by_hand += float((p_t * (p_t.log() - F.log_softmax(s[b, pos], -1))).sum())
                n += 1
    assert n == 5
    assert float(prediction_kl(s, t, LABELS)) == pytest.approx(by_hand / n, rel=1e-5)
    # changing the teacher where the NEXT token is masked changes nothing ...
    t2 = t.clone()
    t2[0, 3] += 5.0  # labels[0, 4] is masked: position 3 predicts no reply token
    t2[0, 5] += 5.0  # the last position never predicts anything
    assert float(prediction_kl(s, t2, LABELS)) == pytest.approx(float(prediction_kl(s, t, LABELS)), rel=1e-6)
    # ... while position 1 (labels[0, 2] = 5) counts, though its own label is masked (the off-by-one case)
    t3 = t.clone()
    t3[0, 1] += torch.linspace(-3, 3, 11)
    assert float(prediction_kl(s, t3, LABELS)) != pytest.approx(float(prediction_kl(s, t, LABELS)), rel=1e-3)


def test_temperature_scales_by_tau_squared():
    s, t = logits(0), logits(1)
    st, tt = F.log_softmax(s[:, :-1] / 2, -1), F.log_softmax(t[:, :-1] / 2, -1)
    mask = LABELS[:, 1:] != IGN
    by_hand = (tt.exp() * (tt - st)).sum(-1)[mask].mean() * 4
    assert float(prediction_kl(s, t, LABELS, 2.0)) == pytest.approx(float(by_hand), rel=1e-5)


def test_topk_with_k_equal_v_is_the_full_kl_and_smaller_k_is_close():
    s, t = logits(0), logits(1) * 3
    lp = F.log_softmax(t, -1)
    full = lp.topk(11, -1)
    assert float(topk_prediction_kl(s, full.indices, full.values, LABELS)) == pytest.approx(
        float(prediction_kl(s, t, LABELS)), rel=1e-5)
    top4 = lp.topk(4, -1)
    assert float(topk_prediction_kl(s, top4.indices, top4.values, LABELS)) > 0
    assert float(topk_prediction_kl(s, top4.indices, top4.values, LABELS)) != pytest.approx(
        float(prediction_kl(s, t, LABELS)), rel=1e-4)
    same = F.log_softmax(s, -1).topk(11, -1)
    assert float(topk_prediction_kl(s, same.indices, same.values, LABELS)) == pytest.approx(0.0, abs=1e-6)


def test_gradients_reach_only_the_student():
    s = logits(0).requires_grad_()
    t = logits(1).requires_grad_()
    prediction_kl(s, t, LABELS).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0 and t.grad is None


def causal_maps(seed, layers, heads, T=4, B=1):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(layers):
        scores = torch.randn(B, heads, T, T, generator=g)
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        out.append(scores.softmax(-1))
    return tuple(out)


def test_attention_kl_by_hand_on_two_by_two():
    a_t = torch.tensor([[[[1.0, 0.0], [0.25, 0.75]]]])  # [1, 1, 2, 2]
    a_s = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])
    labels = torch.tensor([[IGN, 4]])  # only query row 1
    want = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert float(attention_kl((a_s,), (a_t,), labels)) == pytest.approx(want, rel=1e-6)
    labels_both = torch.tensor([[4, 4]])  # row 0: 1·log(1/1) + 0·log 0 = 0, so the mean halves
    assert float(attention_kl((a_s,), (a_t,), labels_both)) == pytest.approx(want / 2, rel=1e-6)
    assert float(attention_kl((a_t,), (a_t,), labels_both)) == pytest.approx(0.0, abs=1e-7)


def test_attention_kl_across_layer_and_head_counts():
    assert layer_map(2, 4) == [1, 3] and layer_map(3, 6) == [1, 3, 5] and layer_map(4, 4) == [0, 1, 2, 3]
    student, teacher = causal_maps(0, 2, 2), causal_maps(1, 4, 4)
    labels = torch.tensor([[IGN, 1, 2, 3]])
    value = attention_kl(student, teacher, labels)
    assert value > 0 and torch.isfinite(value)
    # by hand: head-averaged maps, student layer i vs teacher layer layer_map[i]
    total = 0.0
    for i, j in enumerate(layer_map(2, 4)):
        s, t = student[i].mean(1)[0], teacher[j].mean(1)[0]
        for q in (1, 2, 3):
            total += float((t[q, : q + 1] * (t[q, : q + 1].log() - s[q, : q + 1].log())).sum())
    assert float(value) == pytest.approx(total / (2 * 3), rel=1e-5)
    same = causal_maps(2, 2, 2)
    assert float(attention_kl(same, same, labels)) == pytest.approx(0.0, abs=1e-6)


def test_dae_targets_and_total():
    e, r = logits(0), logits(1)
    domain = torch.tensor([[True] * 6, [False] * 6])
    tgt = dae_targets(e, r, domain)
    assert torch.equal(tgt[0], e[0]) and torch.equal(tgt[1], r[1])
    ce, pred, attn = torch.tensor(2.0), torch.tensor(1.0), torch.tensor(4.0)
    assert float(total_loss(ce, 0.5, pred, attn, 1.0, 0.5)) == pytest.approx(0.5 * 2 + 0.5 * (1 + 2))
    assert float(total_loss(ce, 0.0, pred)) == pytest.approx(2.0)
    assert float(total_loss(ce, 1.0, pred, attn, 0.0, 1.0)) == pytest.approx(4.0)
