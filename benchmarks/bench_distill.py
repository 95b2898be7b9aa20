"""Distillation cost per optimizer step: plain SFT vs online KD vs offline top-k KD, through the real loop.

    .venv/bin/python benchmarks/bench_distill.py            # CPU: tiny student and same-size teacher
    .venv/bin/python benchmarks/bench_distill.py --gpu      # GPU: ~1B student and ~1B teacher in bf16

The three runs train the same student on the same samples, effective batch and token budget; only the loss
step differs. Reported: median seconds per optimizer step (first step skipped), the ratio to SFT, and the
top-k cache's bytes per response token (measured on disk) and its build time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpu", action="store_true")
    p.add_argument("--steps", type=int, default=0, help="optimizer steps per run (default 8)")
    p.add_argument("--top-k", type=int, default=64)
    p.add_argument("--size", default="", help="model shape of bench_train.SHAPES (default: 1b GPU, tiny CPU)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    steps = a.steps or 8
    import torch
    from bench_train import build_model, skewed_samples

    from labrador.trainer.distill.cache import build_cache
    from labrador.trainer.distill.step import load_frozen_model, make_loss_factory
    from labrador.trainer.train.config import load_config
    from labrador.trainer.train.loop import train
    from labrador.trainer.train.prepare import prepare

    batch, max_tokens = (64, 16384) if a.gpu else (32, 2048)
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        student, params = build_model(work / "student", a.gpu, a.size)
        teacher, _ = build_model(work / "teacher", a.gpu, a.size)
        data = work / "data.jsonl"
        short, long = ((20, 200), (600, 1500)) if a.gpu else ((5, 60), (150, 300))
        data.write_text("".join(json.dumps(s) + "\n" for s in skewed_samples(batch * steps, 1, short, long, 0.1)))

        def config(name: str, distill: dict | None) -> Path:
            cfg = {"model": str(student), "output_dir": str(work / name), "max_seq_len": max_tokens // 2,
                   "min_sample_tokens": 1, "max_tokens_per_batch": max_tokens, "heldout_fraction": 0.0,
                   "save_dtype": "bfloat16" if a.gpu else "float32",
                   "phases": [{"name": "bench", "data": str(data), "effective_batch": batch, "max_steps": steps,
                               "lr": 1.0e-4, "warmup_steps": 1}]}
            if distill:
                cfg["distill"] = distill
            path = work / f"{name}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            return path

        runs = {
            "sft": config("sft", None),
            "online": config("online", {"teacher_model": str(teacher), "lambda": 0.5}),
            "offline": config("offline", {"teacher_model": str(teacher), "teacher_cache": str(work / "cache"),
                                          "lambda": 0.5}),
        }
        cfg = load_config(runs["offline"])
        device = torch.device("cuda" if a.gpu else "cpu")
        samples = [s for d in prepare(cfg).data for s in d.train]
        t0 = time.perf_counter()
        counts = build_cache(work / "cache", samples, load_frozen_model(str(teacher), device), top_k=a.top_k,
                             temperature=1.0, teacher_name="bench", max_tokens=max_tokens, device=device)
        results["cache_build_s"] = time.perf_counter() - t0
        disk = sum(f.stat().st_size for f in (work / "cache/shards").glob("*.safetensors"))
        results["cache_bytes_per_token"] = disk / counts["rows"]
        results["cache_bytes_per_token_payload"] = 6 * a.top_k
        for name, path in runs.items():
            c = load_config(path)
            factory = make_loss_factory(c.distill) if c.distill else None
            train(c, progress=False, loss_factory=factory)
            rows = [json.loads(x) for x in (work / name / "metrics.jsonl").read_text().splitlines()][1:]
            results[name] = statistics.median(r["tokens"] / r["tokens_per_s"] for r in rows)
        du = subprocess.run(["du", "-sh", str(work / "cache")], capture_output=True, text=True).stdout.split()[0]
        results["cache_du"] = du
    results["online_over_sft"] = results["online"] / results["sft"]
    results["offline_over_sft"] = results["offline"] / results["sft"]
    results["params"] = params
    if a.json:
        print(json.dumps(results, indent=1))
        return
    print(f"median s/step ({params / 1e6:.1f} M params, batch {batch}, {steps} steps): SFT {results['sft']:.3f}, "
          f"online KD {results['online']:.3f} ({results['online_over_sft']:.2f}x), offline top-{a.top_k} KD "
          f"{results['offline']:.3f} ({results['offline_over_sft']:.2f}x)")
    print(f"top-{a.top_k} cache: {results['cache_bytes_per_token']:.0f} bytes per response token on disk "
          f"({results['cache_bytes_per_token_payload']} payload), built in {results['cache_build_s']:.1f} s")


if __name__ == "__main__":
    main()
