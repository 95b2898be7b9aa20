"""Logits only where a label is, in chunks: the SFT step and every distillation step project just the labelled
positions' hidden states to the vocabulary, a chunk of positions at a time (``loss_chunk_tokens``; 0 = all at
once), and give the loss and the gradients of the full-logits computation (fp32)."""

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
from labrador.trainer.train.head import labelled_positions  # noqa: E402
from labrador.trainer.train.loss import sft_loss, token_ce  # noqa: E402


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


@pytest.mark.parametrize("chunk", [0, 5, 1024])
@pytest.mark.parametrize("layout", ["packed", "padded"])
def test_sft_on_labelled_positions_equals_the_full_logits_loss_and_gradients(world, layout, chunk):
    batch = collate_packed(world.samples) if layout == "packed" else collate_padded(world.samples, world.pad)
    keep = labelled_positions(batch["targets"])
    assert 0 < len(keep) < batch["targets"].shape[1]  # prompts carry no label: fewer logits
    ref_model, model = _model(world.student), _model(world.student)
    ref = token_ce(ref_model(**_inputs(batch), use_cache=False).logits, batch["targets"])
    ref.backward()
    got = sft_loss(model, batch, chunk)
    got.total.backward()
    assert got.tokens == int((batch["targets"] != IGNORE).sum())
    assert abs(float(got.total.detach()) - float(ref.detach())) < 1e-6 * max(1.0, abs(float(ref.detach())))
    _same(_grads(ref_model), _grads(model))


@pytest.mark.parametrize("chunk", [0, 5, 1024])
@pytest.mark.parametrize("kind", ["online", "topk"])
def test_distillation_on_labelled_positions_equals_the_full_logits_loss_and_gradients(world, kind, chunk,
                                                                                     monkeypatch, tmp_path):
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
    step = make_loss_factory(dc)(SimpleNamespace(loss_chunk_tokens=chunk), SimpleNamespace(device=torch.device("cpu")))
    got = step(model, batch)
    got.total.backward()
    assert abs(float(got.total.detach()) - float(ref.detach())) < 1e-5 * max(1.0, abs(float(ref.detach())))
    _same(_grads(ref_model), _grads(model))


def _step_result(world, dc, chunk, batch):
    from labrador.trainer.distill.step import make_loss_factory

    model = _model(world.student)
    step = make_loss_factory(dc)(SimpleNamespace(loss_chunk_tokens=chunk), SimpleNamespace(device=torch.device("cpu")))
    got = step(model, batch)
    got.total.backward()
    return got, _grads(model)


@pytest.mark.parametrize("kind", ["dae", "attention"])
def test_chunked_dae_and_attention_steps_equal_the_whole_logits_step(world, kind):
    from labrador.trainer.train.config import DAEConfig, DistillConfig

    batch = collate_packed(world.samples)
    if kind == "dae":  # the teacher is the expert for the "reverse" samples, the student itself elsewhere
        batch["sample_meta"] = [{"leaf": "a/reverse" if i % 2 == 0 else "b/upper"} for i in range(len(world.samples))]
        dc = DistillConfig(lam=0.7, dae=DAEConfig(expert=str(world.teacher), reference=str(world.student),
                                                  domain=("a/reverse",)))
    else:
        dc = DistillConfig(teacher_model=str(world.teacher), lam=0.5, attention=1.0, temperature=2.0)
    whole, whole_grads = _step_result(world, dc, 0, batch)
    for chunk in (1, 7):
        got, grads = _step_result(world, dc, chunk, batch)
        assert got.tokens == whole.tokens
        assert abs(float(got.total.detach()) - float(whole.total.detach())) < 1e-5 * abs(float(whole.total.detach()))
        assert got.terms.keys() == whole.terms.keys()
        for k in whole.terms:
            assert got.terms[k] == pytest.approx(whole.terms[k], rel=1e-5, abs=1e-6), k
        _same(whole_grads, grads)


def test_chunked_head_falls_back_to_whole_logits_for_a_head_it_cannot_split(world):
    """A head with a bias (or an FSDP2-sharded one) is not a bare [V, H] weight: the step takes the whole
    labelled logits instead, with the same loss."""
    from labrador.trainer.train.head import head_weight

    model = _model(world.student)
    assert head_weight(model) is model.lm_head.weight
    old = model.lm_head
    model.lm_head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        model.lm_head.weight.copy_(old.weight)
        model.lm_head.bias.zero_()
    assert head_weight(model) is None
    batch = collate_packed(world.samples)
    got = sft_loss(model, batch, 4)
    ref = sft_loss(_model(world.student), batch, 4)
    assert float(got.total.detach()) == pytest.approx(float(ref.total.detach()), rel=1e-6)


def test_chunked_loss_under_no_grad_builds_no_graph(world):
    """The held-out loss (no_grad) takes the same chunks without computing a gradient."""
    model = _model(world.student)
    batch = collate_packed(world.samples)
    with torch.no_grad():
        got = sft_loss(model, batch, 3)
    assert not got.total.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert float(got.total) == pytest.approx(float(sft_loss(model, batch, 0).total.detach()), rel=1e-6)
