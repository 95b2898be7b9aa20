"""`labrador chat`: a model named by a night id, `latest`, a catalogue name or a folder answers greedily through
its own chat template; `-q` is scriptable; a bad name is one line that says what exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from labrador.trainer.nightly.registry import Registry  # noqa: E402
from labrador.trainer.serving.refs import ModelRefError, resolve_model  # noqa: E402

LABRADOR = str(Path(sys.executable).with_name("labrador"))


def chat(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([LABRADOR, "chat", *args], capture_output=True, text=True, input=input, timeout=300)


def test_chat_q_is_greedy_and_equals_generate_through_the_chat_template(tiny_model_dir: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    first = chat("--model", str(tiny_model_dir), "-q", "the cat sat", "--max-new-tokens", "12")
    again = chat("--model", str(tiny_model_dir), "-q", "the cat sat", "--max-new-tokens", "12")
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout == again.stdout and first.stdout.strip()

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    inputs = tok.apply_chat_template([{"role": "user", "content": "the cat sat"}], add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True)
    out = model.generate(**inputs, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    expected = tok.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    assert first.stdout.strip() == expected


def test_a_bad_model_name_is_one_line_that_says_what_exists(tmp_path: Path):
    proc = chat("--model", "no-such-model", "-q", "hi", "--state-dir", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "labrador chat: error: no model 'no-such-model'" in proc.stderr and "smollm2-135m-instruct" in proc.stderr
    latest = chat("-q", "hi", "--state-dir", str(tmp_path))
    assert latest.returncode == 2 and "no promoted night" in latest.stderr


def test_latest_and_a_night_id_name_the_nights_models(tmp_path: Path, tiny_model_dir: Path):
    registry = Registry(tmp_path / "registry.db")
    for status in ("promoted", "rejected"):
        record = registry.start({"taxonomy_commit": "a" * 40})
        registry.update({**record, "status": status, "model": str(tiny_model_dir)})
    assert resolve_model("latest", tmp_path).name == "night-0001"  # the newest *promoted* night
    assert resolve_model(None, tmp_path).folder == tiny_model_dir.resolve()
    assert resolve_model("night-0002", tmp_path).name == "night-0002"  # a rejected night's candidate, by id
    with pytest.raises(ModelRefError, match="night-0009 is not a night.*promoted nights: night-0001"):
        resolve_model("night-0009", tmp_path)
    assert resolve_model(str(tiny_model_dir), tmp_path).folder == tiny_model_dir.resolve()
    with pytest.raises(ModelRefError, match="has no config.json"):
        resolve_model(str(tmp_path), tmp_path)


def test_the_conversation_keeps_history_resets_and_saves_a_training_sample(tiny_model_dir: Path, tmp_path: Path):
    import json

    from labrador.trainer.serving.chat import Chat, repl

    c = Chat(tiny_model_dir, system="be brief", max_new_tokens=6)
    written: list[str] = []
    lines = ["the cat", "the dog", f"/save {tmp_path / 'chat.jsonl'}", "/reset", "/nope", "/exit", "never asked"]
    assert repl(c, lines, written.append) == 0
    saved = json.loads((tmp_path / "chat.jsonl").read_text())
    assert [m["role"] for m in saved["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert saved["messages"][3]["content"] == "the dog"
    assert c.history == [] and any("unknown command /nope" in w for w in written)
    assert not any("never asked" in m["content"] for m in saved["messages"])
