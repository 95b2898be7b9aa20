"""A tiny, randomly initialised Llama built locally, so teacher tests never download weights.

The model and tokenizer are saved with ``save_pretrained`` so they load through the same
``from_pretrained`` path a real teacher directory would, and ``serve_model`` serves them with
``transformers serve`` (offline, on CPU, on a free loopback port).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import free_port

SPECIAL_TOKENS = ["<s>", "</s>", "<pad>"]

# Jinja chat template: one line per turn, then an assistant header when a reply is expected.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Labrador grows a model from community contributions to a taxonomy of skills and knowledge.",
    "A teacher model writes questions and answers; a judge scores them before training.",
    "system user assistant: answer the question using the document below.",
    "Question: what is the capital of France? Answer: Paris is the capital of France.",
    "0123456789 + - * / = ( ) [ ] { } < > | : ; , . ! ? ' \"",
]


def _train_tokenizer(corpus: list[str] | None = None, vocab_size: int = 384):  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((corpus or _CORPUS) * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="left",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(dir: Path, *, corpus: list[str] | None = None, vocab_size: int = 384, layers: int = 2,
                     hidden: int = 64, heads: int = 4, seed: int = 1234, tie: bool = False) -> Path:
    """Write a small Llama (default: 2 layers, hidden 64, 4 heads, fixed seed) plus its tokenizer into ``dir``;
    ``corpus`` trains the tokenizer (default: a few generic sentences)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(corpus, vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=tie,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        do_sample=True,  # like real chat models, so `transformers serve` honours temperature and seed
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(dir)
    tokenizer.save_pretrained(dir)
    return dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny model per test session (building it takes about a second)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate ``proc``, wait up to 10 s, then kill it."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _serve_exe() -> Path:
    return Path(sys.executable).with_name("transformers")


def can_serve() -> bool:
    """Whether ``transformers serve`` can run here (the CLI beside this Python, torch, fastapi, uvicorn)."""
    return _serve_exe().exists() and all(importlib.util.find_spec(m) for m in ("torch", "fastapi", "uvicorn"))


@contextlib.contextmanager
def serve_model(model_dir: Path, home: Path) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """Start ``transformers serve MODEL_DIR`` offline (``HF_HOME=home``) on a free loopback port, without
    waiting for it; yields (process, base URL ending in ``/v1``, log file) and stops the process after."""
    port, log_path = free_port(), Path(home) / "serve.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "OMP_NUM_THREADS": "1",
    }
    cmd = [str(_serve_exe()), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    with log_path.open("w+b") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            yield proc, f"http://127.0.0.1:{port}/v1", log_path
        finally:
            stop_process(proc)


def wait_until_served(proc: subprocess.Popen, url: str, log_path: Path, seconds: float = 120) -> None:
    """Return once ``/health`` answers 200; fail the test (with the log's tail) if the server exits or is
    not ready after ``seconds``."""
    import httpx

    health = url.removesuffix("/v1") + "/health"
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            pytest.fail(f"transformers serve exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(health, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"transformers serve not ready after {seconds:.0f} s")
        time.sleep(0.2)
