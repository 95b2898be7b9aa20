"""`labrador serve` on loopback: an OpenAI-compatible server for a model folder that answers chat completions
and lists its model, works as a teacher for `labrador generate`, and leaves no process behind on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from loopback import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
LABRADOR = str(Path(sys.executable).with_name("labrador"))
LEAF = "compositional_skills/writing/freeform/haiku"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_serve_answers_as_a_teacher_and_stops_its_child_on_sigterm(tiny_model_dir: Path, tmp_path: Path):
    port = free_port()
    err = tmp_path / "serve.err"
    with open(err, "w") as log:
        proc = subprocess.Popen([LABRADOR, "serve", "--model", str(tiny_model_dir), "--port", str(port)],
                                stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        deadline = time.monotonic() + 180
        while "serving" not in err.read_text() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
        assert "serving" in err.read_text(), err.read_text()[-3000:]
        child = int(re.search(r"pid (\d+)", err.read_text()).group(1))
        url = f"http://127.0.0.1:{port}/v1"
        models = httpx.get(f"{url}/models", timeout=30).json()["data"]
        assert [m["id"] for m in models] == [str(tiny_model_dir.resolve())]
        reply = httpx.post(f"{url}/chat/completions", timeout=120, json={
            "model": models[0]["id"], "messages": [{"role": "user", "content": "the cat"}], "max_tokens": 5,
            "temperature": 0})
        assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["role"] == "assistant"

        gen = subprocess.run([LABRADOR, "generate", str(ROOT / "taxonomy" / LEAF / "qna.yaml"), "--teacher", url,
                              "--out", str(tmp_path / "out"), "--no-mix", "--judges", "off", "--profile", "quick",
                              "-q"], capture_output=True, text=True, timeout=600, cwd=ROOT)
        assert "Traceback" not in gen.stderr and gen.returncode in (0, 1), gen.stderr[-3000:]
        assert (tmp_path / "out").is_dir() and "Synthetic data" in gen.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0 and not _alive(child)
    out = proc.stdout.read()
    assert f"base URL: http://127.0.0.1:{port}/v1" in out and "served model name:" in out
