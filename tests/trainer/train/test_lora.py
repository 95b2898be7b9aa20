"""LoRA students (`lora:` in the training config): the loss falls, a merged final folder is exactly the base
plus B·A·(alpha/r), an adapter folder loads to the same model, a killed run resumes bit-identically, and the
settings are checked like every other key."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
from trainkit import LABRADOR, run_train, task_file, write_config  # noqa: E402

from labrador.trainer.train.config import LoraConfig, TrainConfigError, load_config  # noqa: E402
from labrador.trainer.train.lora import adapter_base, is_adapter, load_causal_lm, merged_state, wrap  # noqa: E402

LORA = {"r": 4, "alpha": 8.0, "dropout": 0.0}
# a tiny random model learns its output distribution in the head: adapt it too (named modules, not all-linear)
HEAD_TOO = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"]


def weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / ("adapter_model.safetensors" if is_adapter(folder) else "model.safetensors")))


def test_the_merged_state_is_the_base_plus_b_a_times_alpha_over_r(task_model):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(task_model, dtype=torch.float32)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    model = wrap(base, LoraConfig(r=4, alpha=6.0, dropout=0.0))
    torch.manual_seed(0)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_()  # B starts at zero: give the adapters something to add
    state = merged_state(model.state_dict(), 6.0 / 4)
    assert state.keys() == before.keys()
    a = model.state_dict()["base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"]  # (r, in)
    b = model.state_dict()["base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight"]  # (out, r)
    expected = before["model.layers.0.self_attn.q_proj.weight"] + b @ a * (6.0 / 4)
    assert torch.allclose(state["model.layers.0.self_attn.q_proj.weight"], expected, atol=1e-6)
    assert torch.equal(state["model.embed_tokens.weight"], before["model.embed_tokens.weight"])
    ids = torch.tensor([[1, 5, 9, 13]])
    plain = AutoModelForCausalLM.from_pretrained(task_model, dtype=torch.float32)
    plain.load_state_dict(state)
    with torch.no_grad():
        assert torch.allclose(plain(ids).logits, model(ids).logits, atol=1e-5)


def test_a_lora_run_learns_and_its_merged_and_adapter_folders_are_the_same_model(tmp_path, task_model):
    task_file(tmp_path / "p1.jsonl", "reverse", 40)
    phases = [{"name": "p1", "data": str(tmp_path / "p1.jsonl"), "effective_batch": 8, "epochs": 3, "lr": 3e-2}]
    for merge in (True, False):
        write_config(tmp_path / str(merge), task_model, phases,
                     lora={**LORA, "merge": merge, "target_modules": HEAD_TOO})
        run_train(tmp_path / str(merge) / "train.yaml")
    rows = [json.loads(x) for x in (tmp_path / "True/out/metrics.jsonl").read_text().splitlines()]
    first, last = (sum(r["loss"] for r in part) / 3 for part in (rows[:3], rows[-3:]))
    assert last < first - 1.0, [r["loss"] for r in rows]  # the adapters learn
    merged, adapter = tmp_path / "True/out/p1/final", tmp_path / "False/out/p1/final"
    assert not is_adapter(merged) and (merged / "config.json").is_file()
    assert is_adapter(adapter) and adapter_base(adapter) == str(task_model)
    assert not (adapter / "README.md").exists()  # peft's template card names a local path
    base, trained, ad = weights(task_model), weights(merged), weights(adapter)
    a = ad["base_model.model.model.layers.1.mlp.down_proj.lora_A.weight"]
    b = ad["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"]
    name = "model.layers.1.mlp.down_proj.weight"
    assert torch.allclose(trained[name], base[name] + b @ a * (8.0 / 4), atol=1e-6)
    head = base["lm_head.weight"] + ad["base_model.model.lm_head.lora_B.weight"] @ \
        ad["base_model.model.lm_head.lora_A.weight"] * 2.0
    assert torch.allclose(trained["lm_head.weight"], head, atol=1e-6) and trained.keys() == base.keys()
    ids = torch.tensor([[1, 5, 9, 13, 2]])
    with torch.no_grad():
        one = load_causal_lm(merged, dtype=torch.float32)(ids).logits
        two = load_causal_lm(adapter, dtype=torch.float32)(ids).logits
    assert torch.allclose(one, two, atol=1e-5)
    from labrador.trainer.serving.refs import resolve_model

    assert resolve_model(str(adapter), tmp_path).folder == adapter.resolve()  # chat and serve take it too
    from labrador.trainer.serving.cli import _folded
    from labrador.trainer.train.config import check_model_folder

    served = _folded(adapter, tmp_path / "served")  # what `labrador serve` hands the server
    check_model_folder(served, "served")
    with torch.no_grad():
        assert torch.allclose(load_causal_lm(served, dtype=torch.float32)(ids).logits, one, atol=1e-5)


def test_a_killed_lora_run_resumes_bit_identically(tmp_path, task_model):
    task_file(tmp_path / "p1.jsonl", "reverse", 64)
    phases = [{"name": "p1", "data": str(tmp_path / "p1.jsonl"), "effective_batch": 8, "epochs": 2}]
    for d in ("ref", "killed"):
        write_config(tmp_path / d, task_model, phases, lora=LORA, save_every_steps=1, keep_checkpoints=2)
    run_train(tmp_path / "ref/train.yaml")
    metrics = tmp_path / "killed/out/metrics.jsonl"
    proc = subprocess.Popen([LABRADOR, "train", "--config", str(tmp_path / "killed/train.yaml"), "-q"],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if metrics.is_file() and metrics.read_text().count("\n") >= 5:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait() == -signal.SIGKILL
    run_train(tmp_path / "killed/train.yaml", "--resume")
    ref, got = weights(tmp_path / "ref/out/p1/final"), weights(tmp_path / "killed/out/p1/final")
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)


@pytest.mark.parametrize(("lora", "words"), [
    ({"r": 0}, "lora.r: must be at least 1"),
    ({"rank": 8}, "lora.rank: unknown key; known keys: alpha, dropout, merge, r, target_modules"),
    ({"alhpa": 8}, "lora.alhpa: unknown key; did you mean 'alpha'?"),
    ({"dropout": 1.5}, "lora.dropout: must be below 1"),
    ({"target_modules": []}, "lora.target_modules: must be a non-empty list"),
    ({"merge": False}, "lora: merge: false keeps one phase's adapters only"),
])
def test_lora_settings_are_checked_like_every_key(tmp_path, task_model, lora, words):
    task_file(tmp_path / "p.jsonl", "reverse", 8)
    phases = [{"name": n, "data": str(tmp_path / "p.jsonl")} for n in ("p1", "p2")]
    with pytest.raises(TrainConfigError, match=re.escape(words)):
        load_config(write_config(tmp_path, task_model, phases, lora=lora))
