"""Judge-free per-leaf metrics on a tiny Llama through the real `from_pretrained` path: `ref_nll` equals a hand
computation (log-softmax of the logits at the answer tokens), `rouge_l` is the `rouge-score` package's value,
drift replies are the base model's own and cached, and the comparison subtracts the right way round."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("rouge_score")
from tinymodel import build_tiny_model  # noqa: E402
from trainkit import TASK_CORPUS  # noqa: E402

from labrador.trainer.evaluation.metrics import LoadedModel, compare, drift_rows, measure, parse_metrics, rouge_l  # noqa: E402
from labrador.validators.holdout import HeldOut  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("metrics") / "m", corpus=TASK_CORPUS)


def test_ref_nll_is_the_mean_negative_log_likelihood_of_the_answer_tokens(tiny):
    from labrador.trainer.train.data import IGNORE, encode

    model = LoadedModel(tiny)
    item = HeldOut("skills/reverse", "x", "reverse: red cat sun", "sun cat red")
    got = measure(model, [item], ["ref_nll"], 8)["leaves"]["skills/reverse"]["ref_nll"]
    e = encode(model.tokenizer, [{"role": "user", "content": item.prompt},
                                 {"role": "assistant", "content": item.reference}])
    ids = torch.tensor([e.input_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model.model(input_ids=ids).logits[0].double(), -1)
    nats = [-float(logp[i - 1, t]) for i, t in enumerate(e.labels) if t != IGNORE]
    assert nats and got == pytest.approx(sum(nats) / len(nats), abs=1e-4)


def test_rouge_l_is_the_packages_own_and_answers_are_greedy(tiny):
    from rouge_score import rouge_scorer

    want = rouge_scorer.RougeScorer(["rougeL"]).score("the cat sat on the mat", "a cat on a mat")["rougeL"].fmeasure
    assert rouge_l("a cat on a mat", "the cat sat on the mat") == pytest.approx(want)
    model = LoadedModel(tiny)
    items = [HeldOut("a", "1", "reverse: red cat", "cat red"), HeldOut("a", "2", "reverse: dog sun", "sun dog")]
    first = measure(model, items, ["rouge_l"], 6)["leaves"]["a"]
    again = measure(model, items, ["rouge_l"], 6)["leaves"]["a"]
    assert first == again and len(first["answers"]) == 2  # greedy: the same answers twice
    scores = [rouge_l(a, i.reference) for a, i in zip(first["answers"], items, strict=True)]
    assert first["rouge_l"] == pytest.approx(sum(scores) / 2, abs=1e-4)


def test_drift_replies_are_cached_per_base_model_and_compare_subtracts_candidate_minus_parent(tiny, tmp_path):
    cache = tmp_path / "drift.json"
    rows = drift_rows(tiny, cache)
    assert rows and cache.is_file() and json.loads(cache.read_text())["replies"]
    stamp = cache.stat().st_mtime_ns
    assert drift_rows(tiny, cache) == rows and cache.stat().st_mtime_ns == stamp  # asked once
    out = compare({"candidate": {"leaves": {"l": {"ref_nll": 1.0}}, "drift_nll": 2.5},
                   "parent": {"leaves": {"l": {"ref_nll": 1.5}}, "drift_nll": 2.0},
                   "base": {"leaves": {"l": {"ref_nll": 2.0}}, "drift_nll": 2.0}}, ["ref_nll"])
    assert out["leaves"]["l"]["ref_nll"]["delta"] == -0.5 and out["leaves"]["l"]["ref_nll"]["delta_base"] == -1.0
    assert out["drift"]["delta"] == 0.5


def test_unknown_metric_names_are_refused():
    assert parse_metrics("ref_nll, rouge_l") == ("ref_nll", "rouge_l")
    with pytest.raises(ValueError, match="unknown metric blue"):
        parse_metrics("ref_nll,blue")
