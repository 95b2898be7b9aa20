"""The PR bot under load, on loopback: webhook acknowledgement latency, and PR opened -> check run completed.

1. Acknowledgement latency (goal: p99 < 50 ms, nothing lost). ``labrador bot serve`` runs as its own process
   (uvicorn, SQLite queue). An asyncio load generator (raw HTTP/1.1 on --connections keep-alive connections,
   so that it costs little CPU itself) sends --rate signed deliveries per second for --seconds seconds on a
   fixed, open-loop schedule: request i is due at t0 + i/rate whether or not earlier ones were answered
   (waiting in line while every connection is busy), and its latency counts from that instant, so a stalled
   server cannot hide behind a slowed-down client.
   Each delivery is GitHub's recorded ``pull_request.synchronize`` payload (``@octokit/webhooks-examples``,
   ~25 KB) for a distinct PR and head SHA, with its own delivery id, so each one must become exactly one
   queued job. Afterwards the queue file is opened and every job checked against what was sent.

2. PR opened -> check run completed (goal: median < 2 s). The spec-validated GitHub test server
   (``tests/ghserver``) runs in this process; ``labrador bot serve`` and a worker run as processes on one
   SQLite queue (the embedded queue). For each run a new PR adds 10 valid skill leaves; the clock starts
   when the signed ``pull_request.opened`` delivery is sent and stops when the server applied the PATCH that
   completed the check run (its own timestamp, no polling error). The worker: ``fast`` = the bot's
   ``build_worker`` under a huey consumer polling every --poll-ms; ``cli`` = the stock ``labrador bot worker``,
   whose idle polling backs off to its --poll-interval (default 0.5 s; PRs arrive after idle gaps of --gap seconds).

    .venv/bin/python benchmarks/bench_bot.py [--rate 200] [--seconds 30] [--runs 5] [--worker fast,cli]
                                             [--skip-ack] [--skip-pr] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import hmac
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the GitHub test server and GitHub's recorded payloads

from ghserver import GitHubServer, webhook_example  # noqa: E402
from loopback import free_port  # noqa: E402

from labrador.bot.config import load_settings  # noqa: E402
from labrador.bot.queue import JobQueue  # noqa: E402

SECRET = "bench-webhook-secret"
REPO = "org/taxonomy"
PR_SENTINEL = 987654321
SHA_SENTINEL = "5e" * 20
CLI = [str(Path(sys.executable).with_name("labrador"))]
if not Path(CLI[0]).exists():
    CLI = [sys.executable, "-c", "import sys; from labrador.validators.cli import main; sys.exit(main())"]
FAST_WORKER = """
import sys
from pathlib import Path
from labrador.bot.config import load_settings
from labrador.bot.worker import build_worker
settings = load_settings(Path(sys.argv[1]))
queue, runner = build_worker(settings)
runner.sweep()
poll = float(sys.argv[2])
queue.huey.create_consumer(workers=1, initial_delay=poll, backoff=1.0, max_delay=poll, periodic=False).run()
"""


# ---------------------------------------------------------------- helpers


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] if ordered else float("nan")


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (Linux /proc), or nan."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def busy_processes(limit: int = 5) -> list[str]:
    """The busiest other processes right now (what else shares the machine), from ps."""
    try:
        out = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"], capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [" ".join(line.split()) for line in out.splitlines()[:limit]]


def bot_env(work: Path, api_url: str = "", app_id: str = "", key: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABRADOR_")}
    env.update(LABRADOR_WEBHOOK_SECRET=SECRET, LABRADOR_QUEUE_URL=f"sqlite:///{work / 'queue.db'}",
               LABRADOR_WORK_DIR=str(work / "work"), PYTHONPATH=str(REPO_ROOT))
    if api_url:
        env.update(LABRADOR_API_URL=api_url, LABRADOR_APP_ID=app_id, LABRADOR_APP_PRIVATE_KEY=key)
    return env


def write_config(work: Path, **bot: Any) -> Path:
    path = work / "labrador.toml"
    lines = ["[bot]"] + [f"{k} = {json.dumps(v)}" for k, v in bot.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_serve(work: Path, config: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(work / "serve.log", "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([*CLI, "bot", "serve", "--host", "127.0.0.1", "--port", str(port), "--config",
                             str(config)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base + "/webhook"
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"labrador bot serve did not start; see {work / 'serve.log'}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- 1. acknowledgement latency

def template() -> bytes:
    """The recorded synchronize payload, with sentinels where each delivery's PR number and head go."""
    payload = copy.deepcopy(webhook_example("pull_request", "synchronize"))
    payload["number"] = payload["pull_request"]["number"] = PR_SENTINEL
    payload["pull_request"]["head"]["sha"] = payload["after"] = SHA_SENTINEL
    body = json.dumps(payload, separators=(",", ":")).encode()
    assert body.count(str(PR_SENTINEL).encode()) == 2 and body.count(SHA_SENTINEL.encode()) == 2
    return body


def delivery(tpl: bytes, i: int) -> tuple[dict[str, str], bytes, str]:
    sha = hashlib.sha1(b"bench%d" % i).hexdigest()
    body = tpl.replace(str(PR_SENTINEL).encode(), str(i + 1).encode()).replace(SHA_SENTINEL.encode(), sha.encode())
    headers = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/bench",
               "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": str(uuid.uuid4()),
               "X-Hub-Signature-256": sign(body)}
    return headers, body, sha


class Connection:
    """One keep-alive HTTP/1.1 connection on raw asyncio streams: the load generator must cost far less CPU than
    the server it measures (an httpx pool of hundreds of connections did not, on 2 cores)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            sock = self.writer.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self.reader is not None
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and "close" in value.lower():
                close = True
        await self.reader.readexactly(length)
        if close or not status_line:
            self.writer.close()
            self.writer = None
        return int(status_line.split()[1]) if status_line else 0


async def load(url: str, tpl: bytes, rate: float, total: int, connections: int) -> dict[str, Any]:
    """Open-loop load: request i is due at t0 + i/rate and waits in line while all ``connections`` are busy;
    its latency counts from when it was due. Bounded: exactly ``total`` requests, then the workers stop."""
    parts = httpx.URL(url)
    host, port, path = parts.host, parts.port or 80, parts.raw_path.decode()
    statuses: dict[int, int] = {}
    from_due: list[float] = []
    from_send: list[float] = []
    sent: dict[int, str] = {}
    errors: list[str] = []
    line: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    ping = b'{"zen":"hi"}'
    pool = [Connection(host, port) for _ in range(connections)]
    for conn in pool:  # warm up every connection and the server (pings queue nothing)
        await conn.post(path, {"X-GitHub-Event": "ping", "X-GitHub-Delivery": str(uuid.uuid4()),
                               "X-Hub-Signature-256": sign(ping)}, ping)

    async def worker(conn: Connection) -> None:
        while (item := await line.get()) is not None:
            i, due = item
            headers, body, sha = delivery(tpl, i)
            start = loop.time()
            try:
                status = await conn.post(path, headers, body)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                status, conn.writer = 0, None
                errors.append(f"{type(exc).__name__}: {exc}")
            end = loop.time()
            statuses[status] = statuses.get(status, 0) + 1
            from_due.append((end - due) * 1000)
            from_send.append((end - start) * 1000)
            if status == 202:
                sent[i + 1] = sha

    workers = [asyncio.create_task(worker(conn)) for conn in pool]
    t0 = loop.time() + 0.1
    for i in range(total):
        due = t0 + i / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        line.put_nowait((i, due))
    for _ in pool:
        line.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = loop.time() - t0
    for conn in pool:
        if conn.writer is not None:
            conn.writer.close()
    return {"statuses": statuses, "from_due": from_due, "from_send": from_send, "sent": sent, "errors": errors[:5],
            "elapsed_s": elapsed}


def bench_ack(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    config = write_config(work)
    env = bot_env(work)
    proc, url = start_serve(work, config, env)
    total = int(args.rate * args.seconds)
    try:
        cpu0, own0, wall0 = cpu_seconds(proc.pid), time.process_time(), time.monotonic()
        result = asyncio.run(load(url, template(), args.rate, total, args.connections))
        wall = time.monotonic() - wall0
        server_cpu, client_cpu = (cpu_seconds(proc.pid) - cpu0) / wall, (time.process_time() - own0) / wall
    finally:
        stop(proc)
    # nothing lost: every acknowledged delivery is one job in the queue file, with its PR and head
    settings = load_settings(config, {"LABRADOR_QUEUE_URL": env["LABRADOR_QUEUE_URL"],
                                      "LABRADOR_WORK_DIR": env["LABRADOR_WORK_DIR"]})
    queued = {job.pr: job.sha for job in JobQueue(settings).pending() if job.repo == "Codertocat/Hello-World"}
    ok = result["statuses"].get(202, 0)
    return {
        "deliveries": total, "acknowledged_202": ok, "statuses": result["statuses"], "errors": result["errors"],
        "achieved_rate": total / result["elapsed_s"], "queued_jobs": len(queued),
        "queued_match_sent": queued == result["sent"] and len(queued) == total,
        "p50_ms": pct(result["from_due"], 50), "p90_ms": pct(result["from_due"], 90),
        "p99_ms": pct(result["from_due"], 99), "max_ms": max(result["from_due"]),
        "send_p50_ms": pct(result["from_send"], 50), "send_p99_ms": pct(result["from_send"], 99),
        "server_cpu_share": server_cpu, "client_cpu_share": client_cpu, "connections": args.connections,
    }


# ---------------------------------------------------------------- 2. PR opened -> check run completed

def base_tree() -> dict[str, bytes]:
    files = {p.relative_to(REPO_ROOT).as_posix(): p.read_bytes()
             for p in sorted((REPO_ROOT / "taxonomy").rglob("*")) if p.is_file()}
    return {"README.md": b"# taxonomy\n", **files}


def ten_leaves(base: dict[str, bytes], run: int) -> dict[str, bytes]:
    """10 new, valid skill leaves (the repository's own skill leaves, copied to new folders)."""
    skills = sorted(p for p in base if p.endswith("/qna.yaml") and "skills/" in p)
    out: dict[str, bytes] = {}
    for k in range(10):
        src = skills[k % len(skills)]
        folder = f"taxonomy/compositional_skills/bench/run{run}/leaf{k}"
        out[f"{folder}/qna.yaml"] = base[src].replace(b"created_by: labrador-maintainers",
                                                      f"created_by: contributor{k}".encode())
        out[f"{folder}/attribution.txt"] = base[src.replace("qna.yaml", "attribution.txt")]
    return out


def bench_pr(args: argparse.Namespace, work: Path, worker: str) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    with GitHubServer(webhook_secret=SECRET) as gh:
        base = base_tree()
        gh.state.create_repo(REPO, base)
        config = write_config(work, bot_login=gh.state.bot_login)
        env = bot_env(work, gh.api_url, str(gh.app_id), gh.private_key_pem.decode())
        serve, url = start_serve(work, config, env)
        log = open(work / f"worker-{worker}.log", "w")  # noqa: SIM115 - lives as long as the process
        if worker == "fast":
            argv = [sys.executable, "-c", FAST_WORKER, str(config), str(args.poll_ms / 1000)]
        else:
            argv = [*CLI, "bot", "worker", "--workers", "1", "--config", str(config)]
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
        samples: list[dict[str, float]] = []
        try:
            time.sleep(2.0)  # the worker starts and goes idle
            with httpx.Client(timeout=30) as client:
                for run in range(args.runs):
                    pr = gh.state.open_pr(REPO, ten_leaves(base, run), user=f"contributor{run}")
                    headers, body = gh.delivery("pull_request", gh.pull_request_event(REPO, pr.number, "opened"))
                    sent = time.time()
                    response = client.post(url, content=body, headers=headers)
                    acked = time.time()
                    if response.status_code != 202:
                        raise SystemExit(f"delivery refused: {response.status_code} {response.text}")
                    deadline = time.monotonic() + 60
                    while True:
                        with gh.state.lock:
                            done = [r for r in gh.state.checks_for(REPO, pr.head_sha) if r.status == "completed"]
                            if done:
                                check = done[0]
                                created, completed = check.history[0]["at"], check.history[-1]["at"]
                                conclusion, leaves = check.conclusion, check.title
                                break
                        if time.monotonic() > deadline or proc.poll() is not None:
                            raise SystemExit(f"no completed check run; see {work / f'worker-{worker}.log'}")
                        time.sleep(0.005)
                    if conclusion != "success":
                        raise SystemExit(f"expected success, got {conclusion}: {leaves}")
                    samples.append({"total_s": completed - sent, "ack_ms": (acked - sent) * 1000,
                                    "to_check_created_s": created - sent, "check_open_s": completed - created})
                    time.sleep(args.gap)
        finally:
            stop(proc)
            stop(serve)
            gh.raise_errors()
    totals = [s["total_s"] for s in samples]
    return {"worker": worker, "runs": len(samples), "median_s": statistics.median(totals), "min_s": min(totals),
            "max_s": max(totals), "first_s": totals[0], "title": leaves,
            "median_to_check_created_s": statistics.median(s["to_check_created_s"] for s in samples),
            "median_check_open_s": statistics.median(s["check_open_s"] for s in samples), "samples": samples}


# ---------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries per second (default 200)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to sustain it (default 30)")
    parser.add_argument("--connections", type=int, default=32,
                        help="keep-alive connections, i.e. requests in flight at most (default 32)")
    parser.add_argument("--runs", type=int, default=5, help="PRs per worker kind (default 5)")
    parser.add_argument("--worker", default="fast,cli", help="fast, cli or both (default fast,cli)")
    parser.add_argument("--poll-ms", type=float, default=10.0, help="fast worker's queue poll (default 10 ms)")
    parser.add_argument("--gap", type=float, default=1.0, help="idle seconds between PRs (default 1)")
    parser.add_argument("--skip-ack", action="store_true")
    parser.add_argument("--skip-pr", action="store_true")
    parser.add_argument("--workdir", type=Path, help="keep queue files and logs here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-bot-"))
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                          "platform": platform.platform(), "loadavg_before": os.getloadavg(),
                                          "busiest_before": busy_processes()}}
    ok = True
    if not args.skip_ack:
        ack = bench_ack(args, work / "ack")
        report["ack"] = ack
        good = ack["p99_ms"] < 50 and ack["queued_match_sent"] and ack["acknowledged_202"] == ack["deliveries"]
        ok &= good
        print(f"ack latency: {ack['deliveries']} deliveries at {ack['achieved_rate']:.1f}/s, "
              f"{ack['acknowledged_202']} answered 202 {ack['statuses']}; {ack['queued_jobs']} jobs in the queue, "
              f"{'all' if ack['queued_match_sent'] else 'NOT all'} matching what was sent")
        print(f"  from scheduled send: p50 {ack['p50_ms']:.2f} ms, p90 {ack['p90_ms']:.2f} ms, "
              f"p99 {ack['p99_ms']:.2f} ms, max {ack['max_ms']:.1f} ms   (goal p99 < 50 ms: "
              f"{'met' if good else 'MISSED'})")
        print(f"  from actual send:    p50 {ack['send_p50_ms']:.2f} ms, p99 {ack['send_p99_ms']:.2f} ms; "
              f"CPU: server {ack['server_cpu_share'] * 100:.0f}%, load generator "
              f"{ack['client_cpu_share'] * 100:.0f}% of one core; {ack['connections']} connections")
    if not args.skip_pr:
        report["pr"] = []
        for worker in [w.strip() for w in args.worker.split(",") if w.strip()]:
            res = bench_pr(args, work / f"pr-{worker}", worker)
            report["pr"].append(res)
            good = res["median_s"] < 2.0
            ok &= good or worker != "fast"
            print(f"PR opened -> check run completed ({worker} worker, 10 leaves, {res['runs']} runs): "
                  f"median {res['median_s']:.3f} s (min {res['min_s']:.3f}, max {res['max_s']:.3f}, "
                  f"first {res['first_s']:.3f}); check run created after {res['median_to_check_created_s']:.3f} s, "
                  f"open for {res['median_check_open_s']:.3f} s; \"{res['title']}\"   (goal < 2 s: "
                  f"{'met' if good else 'MISSED'})")
    report["machine"]["loadavg_after"] = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average before {report['machine']['loadavg_before']}, after "
          f"{report['machine']['loadavg_after']}; busiest processes before: {report['machine']['busiest_before']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
