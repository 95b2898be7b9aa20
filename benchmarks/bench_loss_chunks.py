"""Seconds and memory of one SFT step for each ``loss_chunk_tokens`` (how its default was chosen).

    .venv/bin/python benchmarks/bench_loss_chunks.py [--chats 40] [--chunks 0,512,1024,2048,4096] [--out DIR]

The model and chats of ``bench_vs_trl.py`` (a random Llama, hidden 256, 4 layers, SmolLM2's 49 k vocabulary;
the taxonomy's seed chats). ``--chats`` of them are packed into one micro-batch with every token trained
(``unmask``), so it holds thousands of labelled positions. For each chunk size, in a fresh process: one
forward and backward of the real loss step (``labrador.trainer.train.loss.sft_loss``), the median of 3 after a
warm-up, and the growth of peak RSS over the loaded model.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def one(out: Path, chats: int, chunk: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labrador.trainer.train.batch import collate_packed
    from labrador.trainer.train.data import encode
    from labrador.trainer.train.loss import sft_loss

    tok = AutoTokenizer.from_pretrained(out / "model")
    rows = [json.loads(x)["messages"] for x in (out / "train.jsonl").read_text().splitlines()][:chats]
    batch = collate_packed([encode(tok, m, unmask=True) for m in rows])
    model = AutoModelForCausalLM.from_pretrained(out / "model", dtype=torch.float32)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(4):
        model.zero_grad(set_to_none=False)
        t = time.perf_counter()
        step = sft_loss(model, batch, chunk)
        step.total.backward()
        times.append(time.perf_counter() - t)
    return {"chunk": chunk, "positions": batch["input_ids"].shape[1], "labelled": step.tokens,
            "seconds": round(statistics.median(times[1:]), 3),
            "peak_growth_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=40)
    parser.add_argument("--chunks", default="0,512,1024,2048,4096")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_loss_chunks"))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.out, args.chats, args.one)))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_vs_trl import build

    args.out.mkdir(parents=True, exist_ok=True)
    if not (args.out / "world.json").is_file():
        build(args.out, 0)
    print("| loss_chunk_tokens | positions | labelled | seconds | peak growth |\n|---|---|---|---|---|")
    for chunk in (int(c) for c in args.chunks.split(",")):
        proc = subprocess.run([sys.executable, __file__, "--one", str(chunk), "--chats", str(args.chats), "--out",
                               str(args.out)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"| {r['chunk']} | {r['positions']} | {r['labelled']} | {r['seconds']} | {r['peak_growth_mb']} MB |",
              flush=True)


if __name__ == "__main__":
    main()
