"""Phase files and training configs for the trainer's tests: two tasks a tiny model can learn on a CPU in
seconds (reverse the words / upper-case the words) and a config writer with small, fast defaults."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

LABRADOR = str(Path(sys.executable).with_name("labrador"))
WORDS = "red green blue cat dog fish sun moon star tree rock sand bird frog leaf rain".split()
TASK_CORPUS = [
    " ".join(WORDS),
    " ".join(w.upper() for w in WORDS),
    "reverse: upper: You are a careful assistant.",
    "<|system|> <|user|> <|assistant|>",
]


def task_sample(rng: random.Random, task: str, *, words: int = 0, system: bool = True) -> dict[str, Any]:
    ws = [rng.choice(WORDS) for _ in range(words or rng.randint(3, 8))]
    answer = " ".join(reversed(ws)) if task == "reverse" else " ".join(w.upper() for w in ws)
    msgs = [{"role": "user", "content": f"{task}: {' '.join(ws)}"}, {"role": "assistant", "content": answer}]
    if system:
        msgs.insert(0, {"role": "system", "content": "You are a careful assistant."})
    return {"messages": msgs, "leaf": f"compositional_skills/{task}"}


def write_phase(path: Path, samples: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(s) + "\n" for s in samples), encoding="utf-8")
    return path


def task_file(path: Path, task: str | list[str], n: int, seed: int = 0, **kw: Any) -> Path:
    rng = random.Random(f"{seed}:{task}")
    tasks = [task] if isinstance(task, str) else task
    return write_phase(path, [task_sample(rng, tasks[i % len(tasks)], **kw) for i in range(n)])


def write_config(folder: Path, model: Path, phases: list[dict[str, Any]], **top: Any) -> Path:
    """A config with small defaults (fast on 2 cores); ``top`` and each phase dict override them."""
    cfg: dict[str, Any] = {
        "model": str(model), "output_dir": str(folder / "out"), "seed": 0, "max_seq_len": 256,
        "min_sample_tokens": 4, "max_tokens_per_batch": 512, "heldout_fraction": 0.1, **top,
        "phases": [{"epochs": 1, "effective_batch": 16, "lr": 1.0e-3, "warmup_steps": 1, **p} for p in phases],
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def fsdp_launch_config(folder: Path, processes: int = 2) -> Path:
    """Our 8-GPU FSDP2 accelerate config, changed only where N CPU processes on one machine need it."""
    from loopback import free_port

    root = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((root / "trainer/configs/fsdp_8gpu.yaml").read_text(encoding="utf-8"))
    cfg.update(num_processes=processes, mixed_precision="no", main_process_port=free_port())
    path = folder / f"fsdp_cpu{processes}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def run_train(config: Path, *extra: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([LABRADOR, "train", "--config", str(config), "-q", *extra], capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc
