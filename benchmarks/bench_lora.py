"""LoRA (r = 16) vs full fine-tuning of the embedded model (all 30 layers), one run on this machine.

    .venv/bin/python benchmarks/bench_lora.py [--data FILE] [--epochs 1] [--out DIR] [--modes full,lora]
                                              [--loss-chunk-tokens N] [--json]

The data: a quick night's mix (``--data .labrador/runs/night-0001/mix.jsonl``), or by default every leaf's seed
examples of this repository's taxonomy (what `nightly --quick` adds with ``include_seeds``). Both modes train the
same samples with ``labrador train`` (the same held-out split, 1 epoch, effective batch 4) in a fresh process
each, measured from outside: peak RSS of the training process, the optimizer state (AdamW: 2 fp32 tensors per
trainable parameter), training tokens/s (the mean of ``metrics.jsonl``), and the held-out loss of the base and
of each final model on the trainer's own held-out split (nats per token; gain = base - final).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LABRADOR = str(Path(sys.executable).with_name("labrador"))


def seed_rows() -> list[dict]:
    from labrador.validators.seeds import seed_conversations
    from labrador.validators.tree import walk

    rows = []
    for leaf in walk(ROOT / "taxonomy")[0]:
        data = yaml.safe_load((ROOT / "taxonomy" / leaf.rel / "qna.yaml").read_text(encoding="utf-8"))
        rows += [{"messages": m, "leaf": leaf.rel, "unmask": False} for m in seed_conversations(data)]
    return rows


def config(out: Path, model: Path, data: Path, epochs: int, lora: dict | None, chunk: int | None = None) -> Path:
    cfg = {"model": str(model), "output_dir": str(out / "train"), "seed": 0, "max_seq_len": 512,
           "max_tokens_per_batch": 2048, "heldout_fraction": 0.1, "min_sample_tokens": 8,
           "phases": [{"name": "night", "data": str(data), "epochs": epochs, "effective_batch": 4,
                       "lr": 2.0e-4 if lora else 2.0e-5, "warmup_steps": 2}]}
    if lora:
        cfg["lora"] = lora
    if chunk is not None:
        cfg["loss_chunk_tokens"] = chunk
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return out / "train.yaml"


def peak_rss_mb(argv: list[str]) -> tuple[float, float]:
    """Run ``argv`` in a fresh helper process; (peak RSS of its child in MB, seconds)."""
    probe = ("import resource, subprocess, sys, json; t = __import__('time').perf_counter(); "
             "rc = subprocess.run(sys.argv[1:]).returncode; "
             "print(json.dumps([rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "
             "__import__('time').perf_counter() - t]))")
    proc = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True)
    rc, rss, secs = json.loads(proc.stdout.strip().splitlines()[-1])
    if rc != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
    return rss, secs


def heldout_losses(cfg_path: Path, models: dict[str, str]) -> dict[str, float]:
    import torch

    from labrador.trainer.train.config import load_config
    from labrador.trainer.train.evaluate import loss_sums
    from labrador.trainer.train.lora import load_causal_lm
    from labrador.trainer.train.prepare import prepare

    prep = prepare(load_config(cfg_path))
    held = prep.data[0].heldout
    out = {}
    for name, folder in models.items():
        model = load_causal_lm(folder, dtype=torch.float32)
        total, count = loss_sums(model, held, 2048, "cpu")
        out[name] = total / count
        del model
    return out


def trainable(model: Path, lora: dict | None) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    if lora:
        from labrador.trainer.train.config import LoraConfig
        from labrador.trainer.train.lora import wrap

        m = wrap(m, LoraConfig(**lora))
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a JSONL of chats (default: the taxonomy's seed examples)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_lora"))
    parser.add_argument("--modes", default="full,lora", help="which runs (default: full,lora)")
    parser.add_argument("--loss-chunk-tokens", type=int, help="the training config's loss_chunk_tokens (default: "
                        "its default); 0: every reply position's logits at once")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from labrador.trainer.models.store import pull

    model = pull("smollm2-135m-instruct")
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.data
    if data is None:
        data = args.out / "seeds.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in seed_rows()), encoding="utf-8")
    modes = {name: lora for name, lora in {"full": None, "lora": {"r": 16, "alpha": 32.0, "dropout": 0.05}}.items()
             if name in args.modes.split(",")}
    results: dict[str, dict] = {}
    for name, lora in modes.items():
        run = args.out / name
        if run.exists():
            import shutil

            shutil.rmtree(run)
        cfg = config(run, model, data, args.epochs, lora, args.loss_chunk_tokens)
        rss, secs = peak_rss_mb([LABRADOR, "train", "--config", str(cfg), "-q"])
        rows = [json.loads(x) for x in (run / "train" / "metrics.jsonl").read_text().splitlines()]
        params = trainable(model, lora)
        results[name] = {"peak_rss_mb": round(rss), "seconds": round(secs, 1), "trainable_params": params,
                         "optimizer_state_mb": round(params * 8 / 2**20, 1), "steps": len(rows),
                         "tokens_per_s": round(sum(r["tokens_per_s"] for r in rows) / len(rows), 1)}
    losses = heldout_losses(args.out / next(iter(modes)) / "train.yaml", {"base": str(model), **{
        n: str(args.out / n / "train" / "night" / "final") for n in modes}})
    for name in modes:
        results[name]["heldout_loss"] = round(losses[name], 4)
        results[name]["heldout_gain"] = round(losses["base"] - losses[name], 4)
    results["base_heldout_loss"] = round(losses["base"], 4)
    results["machine"] = f"{__import__('os').cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}"
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"held-out loss of the base: {losses['base']:.4f} nats/token")
    print("| mode | peak RSS | optimizer state | trainable params | tokens/s | held-out loss | gain |")
    print("|---|---|---|---|---|---|---|")
    for name in modes:
        r = results[name]
        print(f"| {name} | {r['peak_rss_mb']} MB | {r['optimizer_state_mb']} MB | {r['trainable_params']:,} | "
              f"{r['tokens_per_s']} | {r['heldout_loss']:.4f} | {r['heldout_gain']:+.4f} |")
    if len(modes) < 2:
        return
    print(f"LoRA / full: peak RSS {results['lora']['peak_rss_mb'] / results['full']['peak_rss_mb']:.2f}x, "
          f"tokens/s {results['lora']['tokens_per_s'] / results['full']['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
