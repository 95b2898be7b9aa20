"""`labrador train` throughput: padding-free packing vs padded micro-batches, through the real loop.

    .venv/bin/python benchmarks/bench_train.py                 # CPU: tiny Llama, skewed lengths
    .venv/bin/python benchmarks/bench_train.py --gpu           # GPU: random ~1B Llama in bf16 (+ MFU, memory)

Both runs train the same samples with the same effective batch and token budget; the only difference is
``packing``. Reported from ``metrics.jsonl``: real tokens per second (padding excluded, first step skipped
as warm-up), padding fraction, and on a GPU MFU (6 * params * tokens/s plus attention FLOPs, against the
device's dense bf16 peak) and peak memory.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12}  # dense, no sparsity


def skewed_samples(n: int, seed: int, short: tuple[int, int], long: tuple[int, int], long_share: float) -> list:
    """Chat samples whose reply lengths are mostly short with a long tail (like real SDG output)."""
    rng = random.Random(seed)
    words = "alpha beta gamma delta model teacher answer question judge taxonomy leaf seed".split()
    out = []
    for _ in range(n):
        lo, hi = long if rng.random() < long_share else short
        reply = " ".join(rng.choice(words) for _ in range(rng.randint(lo, hi)))
        out.append({"messages": [{"role": "user", "content": "Write: " + " ".join(rng.sample(words, 4))},
                                 {"role": "assistant", "content": reply}]})
    return out


SHAPES = {  # (hidden, intermediate, layers, heads, kv heads): Llama shapes with the tests' small vocabulary
    "tiny": (128, 256, 2, 4, 4),
    "small": (512, 2048, 4, 8, 4),  # ~13 M: big enough on CPU that compute, not overhead, dominates
    "0.5b": (1152, 4608, 24, 16, 8),  # ~0.48 B parameters
    "1b": (2048, 8192, 22, 32, 8),  # ~1.1 B, Llama-3.2-1B-like
}


def build_model(folder: Path, gpu: bool, size: str = "") -> tuple[Path, int]:
    """A random Llama of ``size`` (default: 1b on a GPU, tiny on CPU), bf16 on a GPU, saved with a tokenizer."""
    import torch
    from tinymodel import _train_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _train_tokenizer()
    h, inter, layers, heads, kv = SHAPES[size or ("1b" if gpu else "tiny")]
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=h, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=8192)
    cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    if gpu:
        model = model.to(torch.bfloat16)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder, sum(p.numel() for p in model.parameters())


def run(work: Path, model: Path, data: Path, packing: bool, a: argparse.Namespace) -> dict:
    import torch

    from labrador.trainer.train.config import load_config
    from labrador.trainer.train.loop import train

    out = work / ("packed" if packing else "padded")
    cfg = {"model": str(model), "output_dir": str(out), "max_seq_len": a.max_seq_len, "min_sample_tokens": 1,
           "max_tokens_per_batch": a.max_tokens, "packing": packing, "heldout_fraction": 0.0,
           "save_dtype": "bfloat16" if a.gpu else "float32",
           "phases": [{"name": "bench", "data": str(data), "effective_batch": a.batch, "max_steps": a.steps,
                       "lr": 1.0e-4, "warmup_steps": 1}]}
    path = work / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    if a.gpu:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    train(load_config(path), progress=False)
    wall = time.perf_counter() - t0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][1:]  # skip warm-up step
    tokens = sum(r["tokens"] for r in rows)
    seconds = sum(r["tokens"] / r["tokens_per_s"] for r in rows)
    padding = sum(r["padding_tokens"] for r in rows)
    res = {"packing": packing, "steps": len(rows), "real_tokens": tokens, "tokens_per_s": tokens / seconds,
           "padding_fraction": padding / (tokens + padding), "wall_s": wall}
    if a.gpu:
        res["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpu", action="store_true", help="~1B model in bf16 on the GPU (default: tiny model on CPU)")
    p.add_argument("--samples", type=int, default=0)
    p.add_argument("--steps", type=int, default=0, help="optimizer steps per run (default 6 CPU, 12 GPU)")
    p.add_argument("--batch", type=int, default=0, help="effective batch (default 64 CPU, 128 GPU)")
    p.add_argument("--max-tokens", type=int, default=0, help="tokens per micro-batch (default 4096 CPU, 16384 GPU)")
    p.add_argument("--max-seq-len", type=int, default=0)
    p.add_argument("--size", choices=sorted(SHAPES), default="", help="model shape (default: 1b GPU, tiny CPU)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    a.steps = a.steps or (12 if a.gpu else 6)
    a.batch = a.batch or (128 if a.gpu else 64)
    a.max_tokens = a.max_tokens or (16384 if a.gpu else 4096)
    a.max_seq_len = a.max_seq_len or (4096 if a.gpu else 1024)
    n = a.samples or a.batch * a.steps
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, params = build_model(work / "model", a.gpu, a.size)
        data = work / "data.jsonl"
        short, long = ((20, 200), (1000, 3000)) if a.gpu else ((5, 60), (300, 700))
        data.write_text("".join(json.dumps(s) + "\n" for s in skewed_samples(n, 0, short, long, 0.1)))
        results = [run(work, model, data, True, a), run(work, model, data, False, a)]
    packed, padded = results
    size = a.size or ("1b" if a.gpu else "tiny")
    report = {"device": "gpu" if a.gpu else "cpu", "size": size, "params": params, "packed": packed, "padded": padded,
              "speedup_packed_over_padded": packed["tokens_per_s"] / padded["tokens_per_s"]}
    if a.gpu:
        import torch

        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
        h, _, layers, _, _ = SHAPES[a.size or "1b"]
        for r in results:
            avg_len = a.max_seq_len / 4  # attention term is small at these lengths; a rough mean
            flops = 6 * params + 12 * layers * h * avg_len
            r["mfu"] = r["tokens_per_s"] * flops / peak if peak else None
        report["gpu"] = name
    if a.json:
        print(json.dumps(report, indent=1))
        return
    for r in results:
        extra = f", MFU {r['mfu']:.1%}, peak {r['peak_memory_gib']:.1f} GiB" if a.gpu and r.get("mfu") else ""
        print(f"{'packed' if r['packing'] else 'padded'}: {r['tokens_per_s']:.0f} real tokens/s over {r['steps']} "
              f"steps ({r['real_tokens']} tokens), padding {r['padding_fraction']:.1%}{extra}")
    print(f"packed / padded real tokens/s: {report['speedup_packed_over_padded']:.2f}x ({params / 1e6:.1f} M params)")


if __name__ == "__main__":
    main()
