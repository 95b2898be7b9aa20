"""`labrador train` vs TRL's `SFTTrainer` on the same model, data and recipe, alternating in one run.

    .venv/bin/pip install -c requirements/test.lock -e '.[bench]'      # TRL (benchmarks only)
    .venv/bin/python benchmarks/bench_vs_trl.py [--samples N] [--repeats 3] [--only labrador,trl-packing]
                                                [--out DIR] [--json FILE]

The model: a random Llama (hidden 256, 4 layers) with SmolLM2's 49 k-token vocabulary and chat template (the
embedded model's tokenizer, `labrador models pull`), built once and loaded by every contender. The data: the
taxonomy's seed examples (one question, one answer each, each once: trainers drop duplicates), every eighth held
out and the rest (or the first ``--samples``) trained on. The recipe: 1 epoch, 16 samples a step, lr 1e-3 cosine
to 0 without warm-up, AdamW (0.9, 0.95), no weight decay, clip 1.0, fp32, seed 0.

Contenders, each in a fresh process, in turn, ``--repeats`` times:

- ``labrador``: ``labrador train`` (packed, ``loss_chunk_tokens`` at its default), and ``labrador-whole``
  (``loss_chunk_tokens: 0``: every labelled position's logits at once);
- ``labrador-before`` (with ``--before DIR``): ``labrador train`` from another checkout, e.g. the commit
  before logits were kept to the labelled positions (DIR holds a ``labrador`` link to that tree, put first on
  ``PYTHONPATH``: "ours before", measured in the same run);
- ``trl-packing`` (``packing=True``, best-fit decreasing, blocks sized for 16 samples a step),
  ``trl-padding-free`` and ``trl-padded`` (16 chats a step).

TRL is given prompt/completion pairs, so both train on the answer tokens only, and runs without gradient
checkpointing (its ``SFTConfig`` turns it on by default; we do not checkpoint, so neither side recomputes).
On a CPU, TRL's fused head scores every position (it compacts to the labelled ones on Triton devices only).
Reported, medians over the repeats: real (non-padding) tokens per second and per CPU-second of the library's
training call (ours includes loading the model and saving it; TRL's excludes its tokenisation), the worker's
peak RSS, and the held-out loss of each final model (nats per answer token, measured by the same code for
every contender). The run checks that both losses are per answer token over the whole step: ours by
construction (sums divided by the step's token count), TRL's by recording ``num_items_in_batch`` at every
``compute_loss`` and comparing it with the step's labelled tokens; and that both count the same answer tokens
(TRL's completion also holds the newline after ``<|im_end|>``: one token a sample more).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONTENDERS = ("labrador", "trl-packing", "trl-padding-free", "trl-padded", "labrador-whole", "labrador-before")
STEP_SAMPLES = 16
LR = 1e-3


def chats() -> list[list[dict[str, str]]]:
    """The taxonomy's seed examples: one user question, one assistant answer each."""
    from labrador.validators.seeds import seed_conversations
    from labrador.validators.tree import walk

    out = []
    for leaf in walk(ROOT / "taxonomy")[0]:
        data = yaml.safe_load((ROOT / "taxonomy" / leaf.rel / "qna.yaml").read_text(encoding="utf-8"))
        out += seed_conversations(data)
    return out


def build(out: Path, samples: int) -> dict:
    """The model folder, train.jsonl / heldout.jsonl, and the facts every worker reads (world.json)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from labrador.trainer.models.store import pull
    from labrador.trainer.train.data import IGNORE, encode

    tok = AutoTokenizer.from_pretrained(pull("smollm2-135m-instruct"))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                      tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(out / "model")
    tok.save_pretrained(out / "model")
    every = list({json.dumps(c, sort_keys=True): c for c in chats()}.values())  # trainers drop duplicates
    held = every[::8]
    pool = [c for i, c in enumerate(every) if i % 8]
    if samples > len(pool):
        raise SystemExit(f"--samples {samples}: the taxonomy has {len(pool)} distinct training chats")
    train = pool[:samples] if samples else pool
    for name, rows in (("train", train), ("heldout", held)):
        (out / f"{name}.jsonl").write_text("".join(json.dumps({"messages": m}) + "\n" for m in rows), "utf-8")
    enc = [encode(tok, m) for m in train]
    tokens = sum(len(e) for e in enc)
    longest = max(len(e) for e in enc)
    steps = math.ceil(len(train) / STEP_SAMPLES)
    world = {"tokens": tokens, "answer_tokens": sum(sum(t != IGNORE for t in e.targets) for e in enc),
             "samples": len(train), "steps": steps, "pack_length": max(longest, math.ceil(tokens / steps)),
             "longest": longest, "vocab": len(tok)}
    (out / "world.json").write_text(json.dumps(world), encoding="utf-8")
    return world


def usage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss / 1024


def run_labrador(out: Path, world: dict, chunk: int | None) -> dict:
    from labrador.trainer.train.config import load_config
    from labrador.trainer.train.loop import train

    run = out / "run"
    cfg = {"model": str(out.parent / "model"), "output_dir": str(run), "seed": 0, "max_seq_len": 2048,
           "max_tokens_per_batch": max(4096, world["longest"]), "heldout_fraction": 0.0, "min_sample_tokens": 1,
           "phases": [{"name": "sft", "data": str(out.parent / "train.jsonl"), "epochs": 1,
                       "effective_batch": STEP_SAMPLES, "lr": LR, "warmup_steps": 0}]}
    if chunk is not None:
        cfg["loss_chunk_tokens"] = chunk
    (out / "train.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    config = load_config(out / "train.yaml")
    cpu0, t0 = usage()[0], time.perf_counter()
    train(config, progress=False)
    secs, cpu = time.perf_counter() - t0, usage()[0] - cpu0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {"seconds": secs, "cpu_seconds": cpu, "steps": len(rows),
            "answer_tokens": sum(r["loss_tokens"] for r in rows), "per_token_over_step": True,
            "final": str(run / "sft" / "final")}


def run_trl(out: Path, world: dict, mode: str) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    rows = [json.loads(x)["messages"] for x in (out.parent / "train.jsonl").read_text().splitlines()]
    data = Dataset.from_list([{"prompt": m[:-1], "completion": m[-1:]} for m in rows])
    tok = AutoTokenizer.from_pretrained(out.parent / "model")
    model = AutoModelForCausalLM.from_pretrained(out.parent / "model", dtype=torch.float32,
                                                 attn_implementation="sdpa")
    packing = mode == "trl-packing"
    length = world["pack_length"] if packing else None if mode == "trl-padding-free" else 2048  # TRL's rules
    args = SFTConfig(
        output_dir=str(out / "trl"), num_train_epochs=1, learning_rate=LR, lr_scheduler_type="cosine",
        warmup_steps=0, weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.95, max_grad_norm=1.0, optim="adamw_torch",
        per_device_train_batch_size=1 if packing else STEP_SAMPLES, gradient_accumulation_steps=1,
        packing=packing, padding_free=mode == "trl-padding-free",
        max_length=length, seed=0, data_seed=0, use_cpu=True, bf16=False,
        fp16=False, report_to="none", save_strategy="no", logging_strategy="no", disable_tqdm=True,
        dataloader_num_workers=0, completion_only_loss=True, gradient_checkpointing=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
    seen: list[tuple[int, int]] = []
    inner = trainer.compute_loss

    def recording(model, inputs, return_outputs=False, num_items_in_batch=None):
        labelled = int((inputs["labels"][..., 1:] != -100).sum())
        seen.append((int(num_items_in_batch) if num_items_in_batch is not None else -1, labelled))
        return inner(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    trainer.compute_loss = recording
    answer = sum(sum(t != -100 for t in r["labels"]) for r in trainer.train_dataset)  # TRL's built labels
    cpu0, t0 = usage()[0], time.perf_counter()
    result = trainer.train()
    secs, cpu = time.perf_counter() - t0, usage()[0] - cpu0
    trainer.save_model(str(out / "final"))
    tok.save_pretrained(out / "final")
    return {"seconds": secs, "cpu_seconds": cpu, "steps": int(result.global_step), "answer_tokens": int(answer),
            "per_token_over_step": bool(seen) and all(n == labelled for n, labelled in seen),
            "final": str(out / "final")}


def worker(name: str, out: Path) -> None:
    import labrador

    world = json.loads((out.parent / "world.json").read_text())
    print(f"labrador from {Path(labrador.__file__).parent}", file=sys.stderr)
    if name.startswith("labrador"):
        result = run_labrador(out, world, 0 if name == "labrador-whole" else None)
    else:
        result = run_trl(out, world, name)
    result["peak_rss_mb"] = usage()[1]
    result["source"] = str(Path(labrador.__file__).parent)
    print(json.dumps(result))


def heldout_loss(folder: str, heldout: Path) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labrador.trainer.train.data import encode
    from labrador.trainer.train.evaluate import loss_sums

    tok = AutoTokenizer.from_pretrained(folder)
    samples = [encode(tok, json.loads(x)["messages"]) for x in heldout.read_text().splitlines()]
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    total, count = loss_sums(model, samples, 4096, "cpu")
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=0, help="training chats (default: every distinct one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default=",".join(CONTENDERS), help="comma-separated contenders")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_vs_trl"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--before", type=Path, help="for labrador-before: a folder holding `labrador`, a link to "
                        "another checkout of this repository")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.out)
    names = [n for n in args.only.split(",") if n]
    if "labrador-before" in names and (args.before is None or not (args.before / "labrador").is_dir()):
        raise SystemExit("labrador-before needs --before DIR, DIR/labrador being another checkout")
    unknown = sorted(set(names) - set(CONTENDERS))
    if unknown:
        raise SystemExit(f"--only: unknown contender(s) {', '.join(unknown)}; choose from {', '.join(CONTENDERS)}")
    if any(n.startswith("trl") for n in names):
        try:
            import trl  # noqa: F401
        except ImportError:
            raise SystemExit("TRL is not installed: "
                             ".venv/bin/pip install -c requirements/test.lock -e '.[bench]'") from None
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    world = build(args.out, args.samples)
    print(f"{world['samples']} samples, {world['tokens']:,} tokens ({world['answer_tokens']:,} answer tokens), "
          f"{world['steps']} steps of {STEP_SAMPLES}; vocabulary {world['vocab']:,}", flush=True)
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(args.repeats):
        for name in names:
            out = args.out / f"{name}-{r}"
            out.mkdir()
            env = {**os.environ, "TQDM_DISABLE": "1"}
            if name == "labrador-before":
                env["PYTHONPATH"] = os.pathsep.join([str(args.before.resolve()), env.get("PYTHONPATH", "")])
            proc = subprocess.run([sys.executable, __file__, "--worker", name, "--out", str(out)],
                                  capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise SystemExit(f"{name} failed:\n{proc.stderr[-4000:]}")
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            res["heldout_loss"] = heldout_loss(res["final"], args.out / "heldout.jsonl")
            runs[name].append(res)
            print(f"  repeat {r + 1}: {name}: {world['tokens'] / res['seconds']:.1f} tokens/s, "
                  f"{res['peak_rss_mb']:.0f} MB, held-out {res['heldout_loss']:.4f}", flush=True)
    summary = {}
    for name, rs in runs.items():
        summary[name] = {
            "tokens_per_s": statistics.median(world["tokens"] / x["seconds"] for x in rs),
            "tokens_per_cpu_s": statistics.median(world["tokens"] / x["cpu_seconds"] for x in rs),
            "peak_rss_mb": statistics.median(x["peak_rss_mb"] for x in rs),
            "heldout_loss": statistics.median(x["heldout_loss"] for x in rs),
            "steps": rs[0]["steps"], "answer_tokens": rs[0]["answer_tokens"],
            "per_token_over_step": all(x["per_token_over_step"] for x in rs)}
    base = summary.get("labrador")
    print(f"\n{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, medians of {args.repeats}")
    print("| trainer | tokens/s | labrador ÷ it | tokens/CPU-s | peak RSS | held-out loss | steps | answer tokens "
          "| per token over the step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, s in summary.items():
        ratio = f"{base['tokens_per_s'] / s['tokens_per_s']:.2f}×" if base and name != "labrador" else "—"
        print(f"| {name} | {s['tokens_per_s']:.1f} | {ratio} | {s['tokens_per_cpu_s']:.1f} | "
              f"{s['peak_rss_mb'] / 1024:.2f} GB | {s['heldout_loss']:.4f} | {s['steps']} | {s['answer_tokens']:,} | "
              f"{'yes' if s['per_token_over_step'] else 'NO'} |")
    bad = [n for n, s in summary.items() if not s["per_token_over_step"]]
    far = [n for n, s in summary.items() if abs(s["answer_tokens"] - world["answer_tokens"]) > world["samples"]]
    if args.json:
        args.json.write_text(json.dumps({"world": world, "summary": summary, "runs": runs}, indent=1), "utf-8")
    if bad or far:
        raise SystemExit(f"not comparable: loss not per token over the step: {bad}; answer tokens differ: {far}")


if __name__ == "__main__":
    main()
