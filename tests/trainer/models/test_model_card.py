"""The model card in a model folder: loads with huggingface_hub, carries the metadata tools read, a lineage,
the settings and the measures in model-index form, and never a local path or a credential."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("huggingface_hub")
from huggingface_hub import ModelCard, ModelCardData  # noqa: E402

from labrador.trainer.models.card import CardFacts, base_facts, public, render_card, write_card  # noqa: E402

HELDOUT = {"leaves": {"skills/haiku": {"ref_nll": {"candidate": 1.8, "parent": 2.0, "base": 2.1, "delta": -0.2,
                                                   "delta_base": -0.3},
                                       "rouge_l": {"candidate": 0.29, "parent": 0.15, "delta": 0.14}}},
           "drift": {"candidate": 0.92, "base": 0.89, "delta_base": 0.03}}


def facts(tmp_path: Path, **kw) -> CardFacts:
    kw = {"name": "labrador-night-0002", "base_model": "smollm2-135m-instruct", "license": "apache-2.0", **kw}
    return CardFacts(lineage=[{"id": "night-0001", "taxonomy_commit": "a" * 40, "added": ["skills/haiku"],
                               "changed": [], "removed": []},
                              {"id": "night-0002", "taxonomy_commit": "b" * 40, "added": [],
                               "changed": ["skills/haiku"], "removed": ["skills/old"], "pull_requests": [7]}],
                     training={"phases": [{"name": "night", "lr": 2e-5, "epochs": 1, "effective_batch": 4}],
                               "distill": {"teacher": str(tmp_path / "models" / "smollm2"), "lambda": 0.5},
                               "replay": {"new": 15, "replayed": 36}},
                     heldout=HELDOUT, judged={"skills/haiku": {"mean_before": 5.0, "mean_after": 6.5,
                                                               "verdict": "improved"}}, **kw)


def test_a_card_loads_with_its_metadata_lineage_settings_and_measures(tmp_path: Path):
    path = write_card(tmp_path, facts(tmp_path))
    card = ModelCard.load(path)
    data = card.data
    assert data.license == "apache-2.0" and data.library_name == "transformers"
    assert data.tags == ["labrador", "lab", "synthetic-data"]
    ModelCardData(**data.to_dict())  # the metadata validates as hub metadata (model-index parsed back)
    results = {(r.dataset_name, r.metric_type): r.metric_value for r in data.eval_results}
    assert results == {("skills/haiku", "ref_nll"): 1.8, ("skills/haiku", "rouge_l"): 0.29,
                       ("everyday", "drift_nll"): 0.92, ("skills/haiku", "judge_score"): 6.5}
    assert "| night-0001 |" in card.text and "| night-0002 |" in card.text and "#7" in card.text
    assert "`skills/old`" in card.text and "lr 2e-05, 1 epoch(s)" in card.text
    assert "15 new samples, 36 replayed" in card.text and "λ = 0.5" in card.text


def test_no_local_path_or_credential_reaches_a_card(tmp_path: Path):
    text = render_card(facts(tmp_path, base_model=str(tmp_path / "my-base")))
    assert str(tmp_path) not in text and "my-base" in text
    assert public("https://user:s3cret@example.com:8443/v1") == "https://example.com:8443/v1"
    assert public("/home/alice/models/base") == "base" and public("HuggingFaceTB/SmolLM2") == "HuggingFaceTB/SmolLM2"
    with pytest.raises(ValueError, match="refusing to write a local path"):
        render_card(facts(tmp_path, summary="trained in /home/alice/secret-project/"))


def test_the_base_model_and_licence_come_from_the_catalogue_or_the_base_folders_own_card(tmp_path: Path):
    assert base_facts("smollm2-135m-instruct") == ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0")
    assert base_facts("derive:smollm2-135m-instruct:0,29") == ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0")
    folder = tmp_path / "student"
    write_card(folder, facts(tmp_path, license="mit"))
    assert base_facts(str(folder)) == ("HuggingFaceTB/SmolLM2-135M-Instruct", "mit")
    assert base_facts(str(tmp_path / "plain")) == ("plain", "other")
