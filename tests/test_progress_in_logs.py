"""Long steps print progress lines when stderr is a file (CI logs, nohup, | tee): training, generation,
evaluation, check --preview. The interval is set to 0 so the tiny runs here print every update."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABRADOR = str(Path(sys.executable).with_name("labrador"))
FIXTURES = ROOT / "tests" / "fixtures" / "sdg"
HAIKU = ROOT / "taxonomy" / "compositional_skills" / "writing" / "freeform" / "haiku"


def run(*argv: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("LABRADOR_") and k != "CI"},
            "LABRADOR_PROGRESS_EVERY_S": "0", **env}
    with tempfile.TemporaryFile("w+") as err:  # a file, not a terminal and not a pipe
        proc = subprocess.run([LABRADOR, *argv], stdout=subprocess.PIPE, stderr=err, text=True, env=full,
                              cwd=cwd, timeout=600)
        err.seek(0)
        proc.stderr = err.read()
    return proc


def test_training_prints_progress_lines_into_a_log(tmp_path: Path):
    pytest.importorskip("torch")
    from tinymodel import build_tiny_model
    from trainkit import TASK_CORPUS, task_file, write_config

    model = build_tiny_model(tmp_path / "m", corpus=TASK_CORPUS)
    task_file(tmp_path / "p1.jsonl", "reverse", 24)
    cfg = write_config(tmp_path, model, [{"name": "p1", "data": str(tmp_path / "p1.jsonl"), "effective_batch": 8}])
    proc = run("train", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [x for x in proc.stderr.splitlines() if x.startswith("training p1: ")]
    assert lines and lines[-1].startswith("training p1: 3/3 (100%)") and "tok/s" in lines[-1]


def test_generation_and_the_preview_print_progress_lines_into_a_log(tmp_path: Path):
    pytest.importorskip("httpx")
    gen = run("generate", str(HAIKU / "qna.yaml"), "--teacher", f"replay:{FIXTURES / 'freeform.json'}",
              "--out", str(tmp_path / "out"), "--no-mix")
    assert gen.returncode == 0, gen.stderr[-2000:]
    assert any(x.startswith("generating (requests): ") and "leaves done" in x for x in gen.stderr.splitlines())
    import shutil

    tree = tmp_path / "taxonomy"
    shutil.copytree(HAIKU, tree / HAIKU.relative_to(ROOT / "taxonomy"))
    preview = run("check", "--all", "--no-cache", "--preview", "--taxonomy", str(tree), cwd=tmp_path,
                  LABRADOR_TEACHER=f"replay:{FIXTURES / 'freeform.json'}")
    assert preview.returncode == 0, preview.stderr[-2000:]
    assert "previewing leaves: 1/1 (100%)" in preview.stderr
