"""Healing a derived student: on a tiny Llama parent (trained on the healing corpus itself), the healed cut's
loss on held-out passages is far below the unhealed cut's and close to the parent's; a heal is deterministic
for a seed, resumes after SIGKILL to the same weights, and a second call does no work. Through
`labrador models derive --heal` too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
from tinymodel import build_tiny_model  # noqa: E402

from labrador.trainer.students.heal import HealSettings, corpus_rows, heal_student, healed_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
SETTINGS = HealSettings(steps=24, lr=3.0e-3, effective_batch=8, passage_words=24, save_every_steps=4,
                        chat_samples=16, chat_tokens=24)  # a quarter of the corpus: the parent's own replies
LAYERS = [0]  # one layer of four: a cut that forgets much of what its parent learnt


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _loss(folder: Path, rows: list[dict]) -> float:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labrador.trainer.train.data import encode
    from labrador.trainer.train.evaluate import mean_loss

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    return mean_loss(model, [encode(tok, r["messages"]) for r in rows], 2048)


@pytest.fixture(scope="module")
def parent(tmp_path_factory) -> Path:
    """A 4-layer tiny Llama whose tokenizer and weights learnt the corpus's passages (so it has something
    to teach)."""
    from labrador.trainer.train.config import parse_config
    from labrador.trainer.training import train

    root = tmp_path_factory.mktemp("heal")
    rows = corpus_rows(SETTINGS.passage_words, 400)
    model = build_tiny_model(root / "init", corpus=[r["messages"][1]["content"] for r in rows[:200]], layers=4,
                             vocab_size=512)
    data = root / "corpus.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = parse_config({"model": str(model), "output_dir": str(root / "out"), "max_seq_len": 256,
                        "max_tokens_per_batch": 2048, "heldout_fraction": 0.0, "min_sample_tokens": 4,
                        "phases": [{"name": "p", "data": str(data), "epochs": 10, "lr": 3.0e-3, "effective_batch": 16,
                                    "warmup_steps": 2, "unmask": True}]})
    train(cfg, progress=False)
    return root / "out" / "p" / "final"


def test_healing_brings_the_cut_close_to_its_parent_and_is_cached(parent, tmp_path):
    from labrador.trainer.students.derive import derive_student

    held = corpus_rows(SETTINGS.passage_words, 10**6)[-40:]  # never in the heal's corpus
    cut = derive_student(parent, LAYERS, tmp_path / "cut")
    healed = heal_student(parent, LAYERS, SETTINGS, root=tmp_path / "cache", progress=False)
    p, before, after = _loss(parent, held), _loss(cut, held), _loss(healed, held)
    assert before - p > 0.4, (p, before)  # the cut is clearly worse than its parent ...
    assert after < before - 0.3 and after - p < 0.3 * (before - p), (p, before, after)  # ... healing closes the gap
    marker = json.loads((healed / "labrador-model.json").read_text())
    assert marker["layers"] == LAYERS and marker["healed"]["corpus"] == "pydoc-topics+parent-replies"
    assert marker["healed"]["steps"] == SETTINGS.steps
    assert not list(healed.parent.glob(".*work"))  # the work folder is gone once published
    stamp = (healed / "model.safetensors").stat().st_mtime_ns
    t0 = time.perf_counter()
    assert heal_student(parent, LAYERS, SETTINGS, root=tmp_path / "cache", progress=False) == healed
    assert time.perf_counter() - t0 < 5 and (healed / "model.safetensors").stat().st_mtime_ns == stamp
    other, _, _ = healed_folder(parent, LAYERS, HealSettings(steps=25, passage_words=24), tmp_path / "cache")
    assert other != healed  # another step count is another student


def test_a_killed_heal_resumes_to_the_same_weights(parent, tmp_path):
    clean = heal_student(parent, LAYERS, SETTINGS, root=tmp_path / "a", progress=False)
    final, _, _ = healed_folder(parent, LAYERS, SETTINGS, tmp_path / "b")
    code = (f"from pathlib import Path\nfrom labrador.trainer.students.heal import HealSettings, heal_student\n"
            f"heal_student(Path({str(parent)!r}), {LAYERS}, HealSettings(**{SETTINGS.__dict__!r}), "
            f"root=Path({str(tmp_path / 'b')!r}), progress=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = final.parent / f".{final.name}.work" / "train" / "checkpoints"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if any(d.name.startswith("00-heal-step") for d in checkpoints.glob("*")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the heal ended before its first checkpoint: nothing to kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not final.exists()
    resumed = heal_student(parent, LAYERS, SETTINGS, root=tmp_path / "b", progress=False)
    a, b = _weights(clean), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # same seed, same weights


def test_derive_heal_on_the_command_line(parent, tmp_path):
    labrador = str(Path(sys.executable).with_name("labrador"))
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    proc = subprocess.run([labrador, "models", "derive", "--from", str(parent), "--layers", "0", "--heal",
                           "--heal-steps", "4", "--out", str(tmp_path / "student")], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(healed)" in proc.stdout and (tmp_path / "student" / "config.json").is_file()
    card = (tmp_path / "student" / "README.md").read_text()
    assert "Healed by distilling its parent for 4 steps" in card and str(tmp_path) not in card
    assert list((tmp_path / "xdg" / "labrador" / "models" / "healed").glob("*-0-healed-*"))
    bad = subprocess.run([labrador, "models", "derive", "--from", str(parent), "--layers", "0", "--heal-steps",
                          "4", "--out", str(tmp_path / "x")], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "--heal-steps needs --heal" in bad.stderr and "Traceback" not in bad.stderr


def test_the_parents_own_sampled_replies_are_seeded_and_change_the_cache_key(parent, tmp_path):
    """The chat part of the corpus: one reply of the parent per fixed prompt, the same for the same seed, and
    a heal with such replies is cached apart from one without."""
    from labrador.trainer.students.chat_corpus import chat_prompts, sample_replies

    prompts = chat_prompts(6)
    assert len(set(prompts)) == 6 and prompts == chat_prompts(6)
    first = sample_replies(parent, prompts, 12, seed=0, batch_size=4)
    again = sample_replies(parent, prompts, 12, seed=0, batch_size=4)
    other = sample_replies(parent, prompts, 12, seed=1, batch_size=4)
    assert first == again and first != other
    assert [r["messages"][0]["content"] for r in first] == prompts[:len(first)] and len(first) >= 5
    assert all(r["messages"][1]["content"] for r in first)
    plain, key_plain, rows_plain = healed_folder(parent, LAYERS, replace(SETTINGS, chat_samples=0), tmp_path)
    chat = replace(SETTINGS, chat_samples=6)
    folder, key_chat, rows_chat = healed_folder(parent, LAYERS, chat, tmp_path)
    assert key_chat != key_plain and folder != plain
    assert len(rows_chat) == len(rows_plain) - 6  # the sampled replies take the place of passages


QUICK_HEAL = HealSettings(steps=3, lr=3.0e-3, effective_batch=4, passage_words=24, save_every_steps=0, chat_samples=0)


def test_the_cache_keys_the_parent_by_its_weights_and_never_serves_damaged_weights(parent, tmp_path):
    """Issue 29.2 and 29.3: weights replaced in place are another parent (healed anew, not served the old
    student); a cached student whose weights were cut short or swapped is healed again, never copied out."""
    import shutil

    from safetensors.torch import save_file

    from labrador.trainer.students.heal import is_healed

    mine = tmp_path / "parent"
    shutil.copytree(parent, mine)
    cache = tmp_path / "cache"
    first = heal_student(mine, LAYERS, QUICK_HEAL, root=cache, progress=False)
    before = {k: v.clone() for k, v in _weights(first).items()}  # not a view of the file we damage below
    state = _weights(mine)
    state = {k: v + 0.01 if k.endswith("norm.weight") else v for k, v in state.items()}
    save_file(state, str(mine / "model.safetensors"), metadata={"format": "pt"})  # same path, other weights
    second = heal_student(mine, LAYERS, QUICK_HEAL, root=cache, progress=False)
    assert second != first  # another parent, another student
    weights = first / "model.safetensors"
    first_key = first.name.rsplit("-", 1)[1]
    weights.write_bytes(weights.read_bytes()[:1000])  # the cached file damaged
    assert not is_healed(first, first_key)
    shutil.copytree(parent, mine, dirs_exist_ok=True)  # the old weights back: the damaged entry is wanted again
    again = heal_student(mine, LAYERS, QUICK_HEAL, root=cache, progress=False)
    assert again == first and is_healed(first, first_key)
    after = _weights(again)
    assert max(float((before[k] - after[k]).abs().max()) for k in before) == 0.0  # healed again, the same weights
