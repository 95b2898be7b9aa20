"""Loss labels through the model's own chat template, checked token by token: replies and the special
token closing each reply carry loss, nothing else does (unless the sample is "unmask")."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")
from tinymodel import _train_tokenizer  # noqa: E402

from labrador.trainer.train.data import IGNORE, DataError, encode  # noqa: E402

CHATML = (  # SmolLM2-Instruct's template
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CONVERSATION = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris is the capital of France."},
    {"role": "user", "content": "And 2 + 2?"},
    {"role": "assistant", "content": "4"},
]


@pytest.fixture(scope="module")
def chatml():
    tok = _train_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = CHATML
    return tok


@pytest.fixture(scope="module")
def tiny():
    return _train_tokenizer()


def segments(tok, messages, closer):
    """(text, trained?) pieces of the rendered conversation, built by hand from the template's known shape."""
    out = []
    for m in messages:
        if closer == "<|im_end|>":
            out += [(f"<|im_start|>{m['role']}\n", False), (m["content"], m["role"] == "assistant"),
                    ("<|im_end|>", m["role"] == "assistant"), ("\n", False)]
        else:
            out += [(f"<|{m['role']}|>\n", False), (m["content"], m["role"] == "assistant"),
                    ("</s>", m["role"] == "assistant"), ("\n", False)]
    if closer == "</s>":
        out.insert(0, ("<s>", False))
    return out


@pytest.mark.parametrize("which", ["chatml", "tiny"])
def test_reply_tokens_and_their_closing_token_carry_loss_token_by_token(which, request):
    tok = request.getfixturevalue(which)
    closer = "<|im_end|>" if which == "chatml" else "</s>"
    enc = encode(tok, CONVERSATION)
    ids, expected = [], []
    for text, trained in segments(tok, CONVERSATION, closer):
        piece = tok(text, add_special_tokens=False)["input_ids"]
        ids += piece
        expected += piece if trained else [IGNORE] * len(piece)
    assert enc.input_ids == ids  # the hand-built segmentation is the template's own tokenisation
    assert enc.labels == expected
    trained_text = tok.decode([t for t in enc.labels if t != IGNORE])
    assert trained_text == f"Paris is the capital of France.{closer}4{closer}"
    assert enc.targets == enc.labels[1:] + [IGNORE]
    assert enc.loss_tokens == sum(t != IGNORE for t in expected)


def test_unmask_trains_everything_but_the_system_message(chatml):
    enc = encode(chatml, CONVERSATION, unmask=True)
    system_ids = chatml("Answer briefly.", add_special_tokens=False)["input_ids"]
    masked = [t for t, lab in zip(enc.input_ids, enc.labels, strict=True) if lab == IGNORE]
    assert masked[0] == enc.input_ids[0]  # the first token is never predicted
    assert masked[1:] == system_ids
    assert "What is the capital" in chatml.decode([t for t in enc.labels if t != IGNORE])


def test_a_template_that_rewrites_content_is_refused_not_mis_masked():
    tok = _train_tokenizer()
    tok.chat_template = "{% for m in messages %}{{ m['content'] | trim }}\n{% endfor %}"
    with pytest.raises(DataError, match="changes message text"):
        encode(tok, [{"role": "user", "content": " hi "}, {"role": "assistant", "content": " there "}])


def test_same_conversation_same_key_whatever_the_metadata(tiny):
    a = encode(tiny, CONVERSATION, leaf="a")
    b = encode(tiny, [dict(m) for m in CONVERSATION], leaf="b")
    c = encode(tiny, CONVERSATION[:3])
    assert a.key == b.key != c.key
