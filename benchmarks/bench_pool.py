"""Generation over two teacher endpoints vs one, and with one endpoint killed halfway (issue 20).

    .venv/bin/python benchmarks/bench_pool.py                 # 3 freeform leaves, 60 ms per request, 4 slots
    .venv/bin/python benchmarks/bench_pool.py --delay 0.1 --slots 2

Each endpoint is a real server process on 127.0.0.1 that answers the freeform prompts like a good teacher
and is latency-bound like a GPU replica: ``--slots`` requests at a time, ``--delay`` seconds each. The
teacher gets ``--slots`` requests in flight per endpoint (``endpoint_concurrency``) and the sum as its
``max_concurrency``. Runs, each into an empty output folder:

1. one endpoint; 2. two endpoints (the ratio 1/2 is the speed-up);
3. two endpoints, the second SIGKILLed once half the requests of run 2 were answered: the run completes,
   and every request is answered exactly once (each server logs what it answered; the sum equals run 2's
   count). The time lost is run 3 minus run 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
LEAVES = ["compositional_skills/writing/freeform/haiku/qna.yaml",
          "compositional_skills/writing/freeform/polite_decline_email/qna.yaml",
          "compositional_skills/writing/freeform/simple_explanations/qna.yaml"]


def serve(delay: float, slots: int, log: Path) -> None:
    """One endpoint: prints its base URL, then serves until killed."""
    from scripted_teacher import ScriptedServer

    gate = threading.Semaphore(slots)
    out = open(log, "a", buffering=1)  # noqa: SIM115 - one line per answered request, until the process dies

    class Replica(ScriptedServer):
        def answer(self, body: dict) -> tuple[int, dict]:
            with gate:  # a replica serves `slots` requests at a time
                time.sleep(delay)
                status, reply = super().answer(body)
            out.write(json.dumps({"seed": body.get("seed"), "user": body["messages"][-1]["content"][-80:]}) + "\n")
            return status, reply

    with Replica() as srv:
        print(srv.base_url, flush=True)
        threading.Event().wait()


def start(delay: float, slots: int, log: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", "--delay", str(delay), "--slots", str(slots),
                             "--log", str(log)], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def answered(log: Path) -> int:
    return sum(1 for _ in open(log)) if log.is_file() else 0


def run(urls: list[str], slots: int, out: Path, kill: tuple[subprocess.Popen, Path, int] | None = None) -> float:
    from labrador.trainer.sdg import Limits, generate, prepare_leaves
    from labrador.trainer.teachers.config import TeacherSettings, build_teacher, join_endpoints
    from labrador.validators import Config

    spec = join_endpoints(urls)
    teacher = build_teacher(TeacherSettings(spec=spec, max_concurrency=slots * len(urls), endpoint_concurrency=slots))
    inputs, _ = prepare_leaves(ROOT / "taxonomy", Config(), [leaf.rsplit("/", 1)[0] for leaf in LEAVES])
    stop = threading.Event()
    if kill is not None:
        proc, logs, after = kill

        def killer() -> None:
            while not stop.is_set():
                if sum(answered(f) for f in logs.glob("*.log")) >= after:
                    os.kill(proc.pid, signal.SIGKILL)
                    return
                time.sleep(0.01)

        threading.Thread(target=killer, daemon=True).start()
    t0 = time.perf_counter()
    results = asyncio.run(generate(inputs, teacher, out, limits=Limits(), config=Config(), close_teacher=True))
    seconds = time.perf_counter() - t0
    stop.set()
    bad = [r for r in results if r.status != "ok"]
    if bad:
        raise SystemExit(f"{bad[0].leaf}: {bad[0].status} {bad[0].error}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--delay", type=float, default=0.06)
    p.add_argument("--slots", type=int, default=4)
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help="write the JSON here too")
    a = p.parse_args()
    if a.serve:
        serve(a.delay, a.slots, a.log)
        return
    result: dict = {"delay_s": a.delay, "slots": a.slots, "leaves": len(LEAVES)}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        procs = []
        try:
            for name, count in (("one", 1), ("two", 2)):
                logs = t / name
                logs.mkdir()
                servers = [start(a.delay, a.slots, logs / f"{i}.log") for i in range(count)]
                procs += [s[0] for s in servers]
                result[f"{name}_s"] = round(run([u for _, u in servers], a.slots, t / f"out-{name}"), 2)
                result[f"{name}_requests"] = sum(answered(f) for f in logs.glob("*.log"))
            logs = t / "killed"
            logs.mkdir()
            servers = [start(a.delay, a.slots, logs / f"{i}.log") for i in range(2)]
            procs += [s[0] for s in servers]
            half = result["two_requests"] // 2
            result["killed_s"] = round(run([u for _, u in servers], a.slots, t / "out-killed",
                                           kill=(servers[1][0], logs, half)), 2)
            result["killed_requests"] = sum(answered(f) for f in logs.glob("*.log"))
            result["killed_after"] = half
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
    result["speedup"] = round(result["one_s"] / result["two_s"], 2)
    result["time_lost_s"] = round(result["killed_s"] - result["two_s"], 2)
    result["answered_once"] = result["killed_requests"] == result["two_requests"]
    print(json.dumps(result, indent=1))
    if a.out:
        a.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
