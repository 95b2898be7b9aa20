"""Logits only where a label is: the SFT step and every distillation step project just the labelled positions'
hidden states to the vocabulary, and give the loss and the gradients of the full-logits computation (fp32)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
from tinymodel import build_tiny_model  # noqa: E402
from trainkit import TASK_CORPUS, task_sample  # noqa: E402

from labrador.trainer.distill.losses import prediction_kl, topk_prediction_kl  # noqa: E402
from labrador.trainer.train.batch import collate_packed, collate_padded, labels_from_targets  # noqa: E402
from labrador.trainer.train.data import IGNORE, encode  # noqa: E402
from labrador.trainer.train.loss import labelled_positions, sft_loss, token_ce  # noqa: E402


def _model(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("m")
    student = build_tiny_model(folder / "student", corpus=TASK_CORPUS)
    teacher = build_tiny_model(folder / "teacher", corpus=TASK_CORPUS, seed=7)
    tok = AutoTokenizer.from_pretrained(student)
    rng = random.Random(0)
    samples = [encode(tok, task_sample(rng, t)["messages"]) for t in ("reverse", "upper", "reverse", "upper")]
    return SimpleNamespace(student=student, teacher=teacher, samples=samples, pad=tok.pad_token_id)


def _inputs(batch):
    return {k: batch[k] for k in ("input_ids", "position_ids", "attention_mask") if k in batch}


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6, rtol=1e-5), k


@pytest.mark.parametrize("layout", ["packed", "padded"])
def test_sft_on_labelled_positions_equals_the_full_logits_loss_and_gradients(world, layout):
    batch = collate_packed(world.samples) if layout == "packed" else collate_padded(world.samples, world.pad)
    keep = labelled_positions(batch["targets"])
    assert 0 < len(keep) < batch["targets"].shape[1]  # prompts carry no label: fewer logits
    ref_model, model = _model(world.student), _model(world.student)
    ref = token_ce(ref_model(**_inputs(batch), use_cache=False).logits, batch["targets"])
    ref.backward()
    got = sft_loss(model, batch)
    got.total.backward()
    assert got.tokens == int((batch["targets"] != IGNORE).sum())
    assert abs(float(got.total.detach()) - float(ref.detach())) < 1e-6 * max(1.0, abs(float(ref.detach())))
    _same(_grads(ref_model), _grads(model))


@pytest.mark.parametrize("kind", ["online", "topk"])
def test_distillation_on_labelled_positions_equals_the_full_logits_loss_and_gradients(world, kind, monkeypatch,
                                                                                     tmp_path):
    from labrador.trainer.distill.step import make_loss_factory
    from labrador.trainer.train.config import DistillConfig

    batch = collate_packed(world.samples)
    targets = batch["targets"]
    teacher = _model(world.teacher)
    with torch.no_grad():
        t_logits = teacher(**_inputs(batch), use_cache=False).logits  # [1, T, V]
    lps, ids = torch.log_softmax(t_logits, -1).topk(8, dim=-1)
    ref_model, model = _model(world.student), _model(world.student)
    s_logits = ref_model(**_inputs(batch), use_cache=False).logits
    n = int((targets != IGNORE).sum())
    labels = labels_from_targets(targets)
    pred = prediction_kl(s_logits, t_logits, labels) if kind == "online" else \
        topk_prediction_kl(s_logits, ids, lps, labels)
    ref = (0.5 * token_ce(s_logits, targets) / n + 0.5 * pred) * n
    ref.backward()
    if kind == "online":
        dc = DistillConfig(teacher_model=str(world.teacher), lam=0.5)
    else:  # the cache hands out the teacher's top-k for the batch's positions [1, T, k]
        from labrador.trainer.distill.cache import TopKCache

        monkeypatch.setattr(TopKCache, "batch_targets", lambda self, batch, rows: (ids, lps))
        dc = DistillConfig(teacher_cache=str(tmp_path), lam=0.5)
    step = make_loss_factory(dc)(None, SimpleNamespace(device=torch.device("cpu")))
    got = step(model, batch)
    got.total.backward()
    assert abs(float(got.total.detach()) - float(ref.detach())) < 1e-5 * max(1.0, abs(float(ref.detach())))
    _same(_grads(ref_model), _grads(model))
