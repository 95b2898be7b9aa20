"""`labrador train` configuration: unknown keys, wrong types and missing inputs are reported before any
weights load, naming the file and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from labrador.trainer.train.config import TrainConfigError, check_inputs, load_config


def write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "train.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


BASE = {"model": "m", "output_dir": "out", "phases": [{"name": "phase1", "data": "p1.jsonl"}]}


def test_defaults_and_relative_paths(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.max_seq_len == 2048 and cfg.max_tokens_per_batch == 16384 and cfg.packing is True
    assert cfg.heldout_fraction == 0.05 and cfg.save_every_steps == 0 and cfg.seed == 0
    p = cfg.phases[0]
    assert (p.epochs, p.max_steps, p.effective_batch, p.lr, p.warmup_steps) == (1, 0, 128, 2.0e-5, 25)
    assert p.betas == (0.9, 0.95) and p.weight_decay == 0.0 and p.max_grad_norm == 1.0
    assert Path(cfg.model) == tmp_path.resolve() / "m" and Path(p.data) == tmp_path.resolve() / "p1.jsonl"


@pytest.mark.parametrize("data, words", [
    ({**BASE, "learning_rate": 1}, ["learning_rate", "unknown key"]),
    ({**BASE, "phases": [{"name": "a", "data": "x", "lrr": 1e-5}]}, ["phases[0].lrr", "did you mean 'lr'"]),
    ({**BASE, "packing": "yes"}, ["packing", "true or false"]),
    ({**BASE, "max_seq_len": 1.5}, ["max_seq_len", "whole number"]),
    ({**BASE, "phases": [{"name": "a", "data": "x", "lr": "2e-5"}]}, ["phases[0].lr", "number"]),
    ({**BASE, "phases": [{"name": "a"}]}, ["phases[0].data", "required"]),
    # the distill: block is part of the same schema (torch-free, checked with the rest)
    ({**BASE, "distill": {"teacher_model": "t", "lamda": 0.5}}, ["distill.lamda", "did you mean 'lambda'"]),
    ({**BASE, "distill": {"teacher_model": "t", "lambda": 2}}, ["distill.lambda", "at most 1"]),
    ({**BASE, "distill": {}}, ["exactly one"]),
    ({**BASE, "distill": {"teacher_model": "t", "dae": {"expert": "e", "reference": "r", "domain": ["x/**"]}}},
     ["exactly one"]),
    ({**BASE, "distill": {"dae": {"expert": "e", "reference": "r"}}}, ["distill.dae.domain"]),
    ({**BASE, "distill": {"dae": {"expert": "e", "reference": "r", "domian": ["x"]}}}, ["distill.dae.domian"]),
    ({**BASE, "distill": {"teacher_cache": "c", "attention": 1.0}}, ["online"]),
    ({**BASE, "attn_implementation": "sdpa", "distill": {"teacher_model": "t", "attention": 1.0}}, ["eager"]),
    ({**BASE, "phases": []}, ["phases", "non-empty"]),
    ({k: v for k, v in BASE.items() if k != "model"}, ["model", "required"]),
    ({**BASE, "max_seq_len": 4096, "max_tokens_per_batch": 1024}, ["max_seq_len", "max_tokens_per_batch"]),
    ({**BASE, "phases": [{"name": "a", "data": "x"}, {"name": "a", "data": "y"}]}, ["unique"]),
    ({**BASE, "phases": [{"name": "../a", "data": "x"}]}, ["phases[0].name"]),
    ({**BASE, "heldout_fraction": 1.0}, ["heldout_fraction"]),
    ({**BASE, "phases": [{"name": "a", "data": "x", "effective_batch": 0}]}, ["effective_batch", "at least 1"]),
    # issue 29.11: a huge but finite count is refused, not run for ever
    ({**BASE, "phases": [{"name": "a", "data": "x", "epochs": 2**62}]}, ["phases[0].epochs", "at most 10000"]),
    ({**BASE, "max_seq_len": 2**40}, ["max_seq_len", "at most"]),
])
def test_bad_settings_name_file_and_key(tmp_path, data, words):
    path = write(tmp_path, data)
    with pytest.raises(TrainConfigError) as exc:
        load_config(path)
    assert str(path) in str(exc.value)
    for w in words:
        assert w in str(exc.value)


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(TrainConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(TrainConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")


def test_missing_inputs_reported_before_loading(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    with pytest.raises(TrainConfigError, match="p1.jsonl does not exist"):
        check_inputs(cfg)
    (tmp_path / "p1.jsonl").write_text("")
    with pytest.raises(TrainConfigError, match="is not a folder"):
        check_inputs(cfg)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"model_type": "llamma"}')  # issue 29.14: refused by name
    with pytest.raises(TrainConfigError, match="model_type 'llamma' is not one this transformers knows.*'llama'"):
        check_inputs(cfg)
    (tmp_path / "m" / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(TrainConfigError, match="no tokenizer"):
        check_inputs(cfg)
    (tmp_path / "m" / "tokenizer.json").write_text("{}")
    (tmp_path / "m" / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 10}))
    with pytest.raises(TrainConfigError, match="no chat template"):
        check_inputs(cfg)
    (tmp_path / "m" / "chat_template.jinja").write_text("{{ messages }}")
    with pytest.raises(TrainConfigError, match="no safetensors weights"):
        check_inputs(cfg)
    import struct

    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    whole = struct.pack("<Q", len(header)) + header + bytes(16)
    weights = tmp_path / "m" / "model.safetensors"
    broken = whole[:8] + b"{not json" + bytes(len(header) + 7)
    for damaged, message in ((b"", "cut short"), (b"\xff" * 8 + header, "invalid header length"),
                             (whole[:-4], "cut short: its tensors need"), (broken, "broken header")):
        weights.write_bytes(damaged)
        with pytest.raises(TrainConfigError, match=message) as info:
            check_inputs(cfg)
        assert "model.safetensors" in str(info.value)
    weights.write_bytes(whole)
    check_inputs(cfg)


def test_fingerprint_changes_with_anything_that_changes_the_weights(tmp_path):
    a = load_config(write(tmp_path, BASE))
    b = load_config(write(tmp_path, {**BASE, "seed": 1}))
    c = load_config(write(tmp_path, {**BASE, "phases": [{"name": "phase1", "data": "p1.jsonl", "lr": 1e-4}]}))
    assert len({a.fingerprint(), b.fingerprint(), c.fingerprint()}) == 3
    assert a.fingerprint() == load_config(write(tmp_path, BASE)).fingerprint()


def test_the_removed_distill_teacher_key_is_refused_naming_its_successor(tmp_path):
    path = write(tmp_path, {**BASE, "distill": {"teacher": "t", "lambda": 0.3}})
    with pytest.raises(TrainConfigError, match="teacher_model"):
        load_config(path)


def test_dae_domains_use_the_recipes_glob_dialect(tmp_path):
    cfg = load_config(write(tmp_path, {**BASE, "distill": {"dae": {"expert": "e", "reference": "r",
                                                                  "domain": ["knowledge/finance"]}}}))
    dae = cfg.distill.dae
    assert dae.is_domain({"leaf": "knowledge/finance/tax/rates"})  # a branch selects its subtree
    assert not dae.is_domain({"leaf": "knowledge/financial_news"}) and not dae.is_domain({})
