"""`benchmarks/gpu.sh`, the one script a lent GPU runs, runs end to end on this CPU with tiny models and
writes its one JSON: every part measured (none recorded as an error), with the numbers the issue asks for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("xgrammar")
ROOT = Path(__file__).resolve().parents[1]


def test_gpu_script_runs_on_cpu_and_writes_one_json(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--cpu", "--tiny", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=480)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["cpu_only"] and report["tiny"] and report["device"] == "cpu"
    train, distill, structured = report["train"], report["distill"], report["structured"]
    assert train["size"] == "tiny" and train["packed"]["tokens_per_s"] > 0 and train["padded"]["tokens_per_s"] > 0
    assert train["packed"]["padding_fraction"] == 0 < train["padded"]["padding_fraction"]
    assert distill["sft"] > 0 and distill["online_over_sft"] > 0 and distill["offline_over_sft"] > 0
    assert structured["free_steps_per_s"] > 0 and structured["constrained_steps_per_s"] > 0
    assert structured["ratio_constrained_over_free"] > 0 and structured["device"] == "cpu"
    bad = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown argument --nope" in bad.stderr
