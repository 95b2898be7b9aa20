"""``labrador serve``: a model behind an OpenAI-compatible API, by the best server installed: ``vllm serve``
where vLLM is installed and a GPU is present, else ``transformers serve``. We start it as a child process in
a session of its own, say where it listens, and on SIGINT or SIGTERM stop it and everything it started."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

GRACE_S = 10.0  # a child that has not stopped this long after SIGTERM is killed


def has_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def server_argv(folder: Path, name: str, host: str, port: int, *, vllm: bool | None = None) -> tuple[list[str], str]:
    """The child's command line and the model name it serves. ``vllm``: None picks (installed and a GPU)."""
    if vllm is None:
        vllm = importlib.util.find_spec("vllm") is not None and has_gpu()
    if vllm:
        return ([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder),
                 "--served-model-name", name, "--host", host, "--port", str(port)], name)
    device = "cuda" if has_gpu() else "cpu"
    return ([sys.executable, "-c", "import sys; from transformers.cli.transformers import main; sys.exit(main())",
             "serve", str(folder), "--host", host, "--port", str(port), "--device", device], str(folder))


def wait_ready(url: str, child: subprocess.Popen, timeout_s: float) -> bool:
    """Whether ``url/models`` answers before ``timeout_s`` (False at once when the child has died)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return False
        try:
            if httpx.get(f"{url}/models", timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def stop_child(child: subprocess.Popen) -> int:
    """SIGTERM to the child's whole process group, then SIGKILL after :data:`GRACE_S`."""
    for sig, wait in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, GRACE_S)):
        if child.poll() is not None:
            break
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            break
        try:
            child.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    return child.wait()


def serve(argv: list[str], url: str, name: str, say: Callable[[str], None], ready_timeout_s: float = 600.0) -> int:
    """Run the server until it exits or we are told to stop; 0 when stopped by a signal."""
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}  # a local folder: no hub
    child = subprocess.Popen(argv, start_new_session=True, env=env)
    stopping = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)
        raise KeyboardInterrupt

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        say(f"starting the server (pid {child.pid})")
        if wait_ready(url, child, ready_timeout_s):
            say(f"serving {name} at {url}  (use it as a teacher: --teacher {url}; stop with Ctrl-C)")
        elif child.poll() is None:
            say(f"the server has not answered at {url} after {ready_timeout_s:.0f} s; still waiting")
        return child.wait()
    except KeyboardInterrupt:
        say("stopping the server")
        stop_child(child)
        return 0
    finally:
        if child.poll() is None:
            stop_child(child)
        for s, handler in old.items():
            signal.signal(s, handler)
