"""FSDP2 on CPU processes against one process (and against DDP), through `labrador train` itself.

    .venv/bin/python benchmarks/bench_fsdp.py [--steps 8] [--size small] [--json]

The same samples, effective batch and token budget are trained three ways: one process (all cores), two
processes under `accelerate launch` with our FSDP2 config (trainer/configs/fsdp_8gpu.yaml, process count and
mixed precision changed for CPUs; one core each), and two DDP processes. Reported: real tokens per second of
each (from ``metrics.jsonl``, the first step skipped as warm-up), wall time, and the largest absolute
difference of any final weight from the one-process run. On a 2-core machine the processes share the same
cores, so the tokens/s ratio measures the cost of sharding (gathers, reduce-scatters), not a scaling gain.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
LABRADOR = str(Path(sys.executable).with_name("labrador"))
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))


def launch(how: str, work: Path, config: Path) -> list[str]:
    from loopback import free_port
    from trainkit import fsdp_launch_config

    train = [LABRADOR, "train", "--config", str(config), "-q"]
    if how == "one":
        return train
    if how == "fsdp":
        return [ACCELERATE, "launch", "--config_file", str(fsdp_launch_config(work)), *train]
    return [ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
            "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()), *train]


def run(how: str, work: Path, model: Path, data: Path, a: argparse.Namespace) -> dict:
    out = work / how
    cfg = {"model": str(model), "output_dir": str(out), "max_seq_len": 512, "min_sample_tokens": 1,
           "max_tokens_per_batch": a.max_tokens, "heldout_fraction": 0.0, "save_dtype": "float32",
           "phases": [{"name": "bench", "data": str(data), "effective_batch": a.batch, "max_steps": a.steps,
                       "lr": 1.0e-4, "warmup_steps": 1}]}
    path = work / f"{how}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    threads = str(os.cpu_count() or 1) if how == "one" else str(max(1, (os.cpu_count() or 2) // 2))
    t0 = time.perf_counter()
    proc = subprocess.run(launch(how, work, path), capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": threads})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{how} failed:\n{proc.stderr[-3000:]}")
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][1:]
    tokens = sum(r["tokens"] for r in rows)
    seconds = sum(r["tokens"] / r["tokens_per_s"] for r in rows)
    return {"how": how, "steps": len(rows), "real_tokens": tokens, "tokens_per_s": tokens / seconds,
            "wall_s": wall, "final": str(out / "bench/final")}


def max_difference(a: str, b: str) -> float:
    from safetensors.torch import load_file

    x, y = load_file(f"{a}/model.safetensors"), load_file(f"{b}/model.safetensors")
    if set(x) != set(y):
        raise SystemExit(f"the final folders hold different weights: {sorted(set(x) ^ set(y))}")
    return max(float((x[k].float() - y[k].float()).abs().max()) for k in x)


def main() -> None:
    from bench_train import SHAPES, build_model, skewed_samples

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=8, help="optimizer steps per run")
    p.add_argument("--batch", type=int, default=32, help="effective batch (samples per step)")
    p.add_argument("--max-tokens", type=int, default=2048, help="tokens per micro-batch")
    p.add_argument("--size", choices=sorted(SHAPES), default="tiny")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, params = build_model(work / "model", False, a.size)
        data = work / "data.jsonl"
        samples = skewed_samples(a.batch * a.steps, 0, (5, 60), (200, 400), 0.1)
        data.write_text("".join(json.dumps(s) + "\n" for s in samples))
        runs = {how: run(how, work, model, data, a) for how in ("one", "fsdp", "ddp")}
        for how in ("fsdp", "ddp"):
            runs[how]["max_weight_difference_vs_one"] = max_difference(runs["one"]["final"], runs[how]["final"])
    report = {"device": "cpu", "cores": os.cpu_count(), "size": a.size, "params": params, **runs,
              "fsdp_tokens_per_s_over_one": runs["fsdp"]["tokens_per_s"] / runs["one"]["tokens_per_s"],
              "fsdp_tokens_per_s_over_ddp": runs["fsdp"]["tokens_per_s"] / runs["ddp"]["tokens_per_s"]}
    for r in runs.values():
        r.pop("final")
    if a.json:
        print(json.dumps(report, indent=1))
        return
    for how, r in runs.items():
        diff = f", max |w - w_one| {r['max_weight_difference_vs_one']:.2e}" if how != "one" else ""
        print(f"{how}: {r['tokens_per_s']:.0f} real tokens/s over {r['steps']} steps, wall {r['wall_s']:.1f} s{diff}")
    print(f"FSDP2 / one process tokens/s: {report['fsdp_tokens_per_s_over_one']:.2f}x; FSDP2 / DDP: "
          f"{report['fsdp_tokens_per_s_over_ddp']:.2f}x ({params / 1e6:.1f} M params, {a.size})")


if __name__ == "__main__":
    main()
