"""SDG orchestration: our generator against upstream ``instructlab-sdg`` on one simulated teacher endpoint.

The endpoint (a subprocess on 127.0.0.1) is OpenAI-compatible (``/v1/chat/completions`` for ours,
``/v1/completions`` with batched prompts for upstream) and models a vLLM-like server: C slots, every
*sequence* (prompt x choice) holds one slot for a FIXED latency, the rest queue. It answers each LAB prompt
in the format asked (tagged questions, contexts, scores that pass), with unique text so nothing is a
duplicate, and the SAME number of items per stage for both systems (questions per completion: --items for
freeform, 3 for grounded; one context per completion), so both do the same work. It records busy slots
over time: utilisation = busy slot-seconds / (C x window from first to last sequence).

Leaves: the compositional skill leaves of ``taxonomy/`` (upstream never reads foundational skills; its
knowledge path clones document repositories over the network), copied --variants times (distinct
``created_by``). Ours: the CLI's teacher (``build_teacher``) and ``trainer.sdg.generate`` with ``max_concurrency=C``
(one shared cap, all leaves at once), then the mix. Upstream: ``generate_data(pipeline="full")`` in its
own venv with its defaults (batch_size 8, default workers), once with the server accepting batched
prompts (vLLM) and once without (servers that take one prompt per request, e.g. llama.cpp), on
--no-batch-leaves of the leaves only, as it is slow.

    .venv/bin/python benchmarks/bench_sdg.py [--slots 16] [--latency 0.1] [--variants 2] [--items 5]
        [--upstream-python /tmp/sdg-venv/bin/python] [--no-batch-leaves 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_counter = iter(range(10**12))
BUCKET_S = 1.0


def sentence(words: int = 10) -> str:
    """Random letters: no two answers share enough character 5-grams to look like near-duplicates."""
    rng = random.Random(next(_counter))
    return " ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(words))


def reply(kind: str, items: int, upstream: bool) -> str:
    """A well-formed answer of ``kind``: the JSON our prompts' schemas ask for, or upstream's tags
    ([Start of X] ... [End of X])."""
    if not upstream:
        return ours(kind, items)
    def tag(name: str, body: str) -> str:
        return f"[Start of {name}]\n{body}\n[End of {name}]\n" if upstream else f"[{name}]\n{body}\n[End]\n"

    if kind in ("questions", "grounded_questions"):
        count = items if kind == "questions" else 3
        return "".join(tag("Question", f"{i + 1}. Please explain {sentence()}?") for i in range(count))
    if kind == "context":
        return tag("Context", sentence(40))
    if kind in ("score1", "score2", "score3"):
        return tag("Evaluation", "Fine.") + tag("Score", kind[-1])
    return tag("Response", sentence(20))


def ours(kind: str, items: int) -> str:
    """Our reply formats: JSON for the parsed prompts (one array of items, or an explanation and a score)."""
    if kind in ("questions", "grounded_questions"):
        count = items if kind == "questions" else 3
        return json.dumps({"questions": [f"Please explain {sentence()}?" for _ in range(count)]})
    if kind == "context":
        return json.dumps({"contexts": [sentence(40)]})
    if kind in ("score1", "score2", "score3", "yes"):
        return json.dumps({"explanation": "Fine.", "score": 1 if kind == "yes" else int(kind[-1])})
    if kind == "qa":
        return json.dumps({"pairs": [{"question": f"What is {sentence(6)}?", "answer": sentence()}
                                     for _ in range(items)]})
    return sentence(20)


OURS = {"freeform_questions": "questions", "grounded_questions": "grounded_questions", "grounded_contexts": "context",
        "freeform_question_judge": "score1", "grounded_question_judge": "score1", "knowledge_question_judge": "score1",
        "freeform_pair_judge": "score3", "grounded_pair_judge": "score3", "knowledge_relevancy_judge": "score2",
        "knowledge_faithfulness_judge": "yes", "knowledge_qa": "qa"}


def upstream_kind(prompt: str) -> str:
    """Upstream's prompts, recognised by their closing instructions (configs/skills/*.yaml)."""
    if "binary 0/1 scale between [Start of Score]" in prompt:
        return "score1"
    if "on a scale of 1 to 3" in prompt:
        return "score3"
    if "Start your response with the tag [Start of Context]" in prompt:
        return "context"
    if "Return the response between [Start of Response]" in prompt:
        return "response"
    return "grounded_questions" if "Do not return any contexts or answers" in prompt else "questions"


# -- the endpoint (runs in its own process) -------------------------------------------------------------


class Slots:
    """C slots; each sequence holds one for ``latency`` seconds. Integrates busy slots over time."""

    def __init__(self, slots: int, latency: float) -> None:
        self.slots, self.latency = slots, latency
        self.sem = asyncio.Semaphore(slots)
        self.reset()

    def reset(self) -> None:
        self.busy = self.max_busy = self.sequences = self.requests = 0
        self.area, self.first, self.last, self.end = 0.0, None, None, None
        self.t0, self.buckets = time.monotonic(), {}

    def _tick(self) -> float:
        now = time.monotonic()
        if self.last is not None:
            self.area += self.busy * (now - self.last)
            self.buckets[int((now - self.t0) / BUCKET_S)] = self.area  # cumulative busy slot-seconds
        self.last = now
        return now

    async def run(self) -> None:
        async with self.sem:
            now = self._tick()
            self.first = now if self.first is None else self.first
            self.busy += 1
            self.max_busy = max(self.max_busy, self.busy)
            try:
                await asyncio.sleep(self.latency)
            finally:
                self.end = self._tick()
                self.busy -= 1
                self.sequences += 1

    def stats(self) -> dict[str, Any]:
        window = (self.end - self.first) if self.first is not None and self.end is not None else 0.0
        util = self.area / (self.slots * window) if window else 0.0
        timeline, before = [], 0.0  # utilisation per BUCKET_S of the run, to see where slots sat idle
        for b in range(max(self.buckets, default=-1) + 1):
            area = self.buckets.get(b, before)
            timeline.append(round((area - before) / (self.slots * BUCKET_S), 2))
            before = area
        return {"requests": self.requests, "sequences": self.sequences, "window_s": round(window, 3),
                "utilisation": round(util, 4), "max_busy": self.max_busy, "slots": self.slots,
                "ideal_s": round(self.sequences * self.latency / self.slots, 3), "timeline": timeline}


async def serve(port: int, slots: int, latency: float, items: int, batch: bool) -> None:
    sys.path.insert(0, str(ROOT))
    from labrador.trainer.teachers import Request
    from labrador.trainer.teachers.replay import prompt_classifier

    classify = prompt_classifier()
    state = Slots(slots, latency)

    async def route(method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "GET" and path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": "bench-model", "object": "model"}]}
        if path == "/stats":
            return 200, state.stats()
        if path == "/reset":
            state.reset()
            return 200, {}
        n = int(body.get("n") or 1)
        if path == "/v1/chat/completions":
            kind = OURS.get(classify(Request.chat(body["messages"])) or "", "response")
            texts = [reply(kind, items, upstream=False) for _ in range(n)]
            key = "message"
        elif path == "/v1/completions":
            prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
            prompts = prompts if batch else prompts[:1]  # no batching: answer the first prompt only
            texts = [reply(upstream_kind(p), items, upstream=True) for p in prompts for _ in range(n)]
            key = "text"
        else:
            return 404, {"error": {"message": f"no route {method} {path}"}}
        state.requests += 1
        await asyncio.gather(*(state.run() for _ in texts))
        choices = [{"index": i, "finish_reason": "stop",
                    **({"message": {"role": "assistant", "content": t}} if key == "message" else {"text": t})}
                   for i, t in enumerate(texts)]
        return 200, {"id": "bench", "object": "completion", "created": 0, "model": "bench-model", "choices": choices,
                     "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = h.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                raw = await reader.readexactly(int(headers.get("content-length") or 0))
                status, payload = await route(method, target.split("?")[0], json.loads(raw) if raw else {})
                data = json.dumps(payload).encode()
                head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(data)}\r\n\r\n")
                writer.write(head.encode() + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


# -- the two clients ------------------------------------------------------------------------------------


def make_taxonomy(dest: Path, variants: int) -> list[str]:
    """Compositional skill leaves of ``taxonomy/``, each copied ``variants`` times (distinct bytes and path)."""
    leaves = []
    for qna in sorted((ROOT / "taxonomy" / "compositional_skills").rglob("qna.yaml")):
        rel = qna.parent.relative_to(ROOT / "taxonomy")
        for v in range(variants):
            folder = dest / rel.parent / f"{rel.name}_v{v}"
            folder.mkdir(parents=True)
            text = re.sub(r"(?m)^created_by: (.*)$", rf"created_by: \1-v{v}", qna.read_text())
            (folder / "qna.yaml").write_text(text)
            shutil.copy(qna.parent / "attribution.txt", folder / "attribution.txt")
            leaves.append(folder.relative_to(dest).as_posix())
    return leaves


def run_ours(url: str, taxonomy: Path, out: Path, slots: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from labrador.trainer.mixing import load_recipe, write_mix
    from labrador.trainer.sdg import generate, prepare_leaves
    from labrador.trainer.teachers.config import TeacherSettings, build_teacher
    from labrador.validators import Config
    from labrador.validators.tree import leaves_from_args

    inputs, skipped = prepare_leaves(taxonomy, Config(), leaves_from_args(taxonomy, []))
    assert not skipped, skipped
    teacher = build_teacher(TeacherSettings(spec=url, model="bench-model", max_concurrency=slots))
    start = time.perf_counter()
    results = asyncio.run(generate(inputs, teacher, out, max_leaves=len(inputs), close_teacher=True))
    generated = time.perf_counter() - start
    write_mix(out, load_recipe(), {r.leaf.rsplit("/", 1)[0]: r.samples for r in results})
    return {"leaves": len(results), "status": sorted({r.status for r in results}), "kept": sum(r.kept for r in results),
            "generate_s": round(generated, 3), "total_s": round(time.perf_counter() - start, 3)}


def upstream_main(url: str, taxonomy: str, out: str) -> None:
    """Runs inside upstream's venv: ``generate_data`` as ``ilab data generate`` calls it."""
    import logging

    import openai
    from instructlab.sdg.generate_data import generate_data

    logging.basicConfig(level=logging.WARNING)
    client = openai.OpenAI(base_url=url, api_key="EMPTY")
    start = time.perf_counter()
    generate_data(client=client, model_family="mixtral", model_name="bench-model", taxonomy=taxonomy,
                  taxonomy_base="empty", output_dir=out, pipeline="full", console_output=False)
    total = time.perf_counter() - start
    kept = sum(len(p.read_text().splitlines()) for p in Path(out).glob("generated_*/*.jsonl"))
    print(json.dumps({"total_s": round(total, 3), "kept": kept}))


def run_upstream(python: str, url: str, taxonomy: Path, out: Path) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TQDM_DISABLE": "1", "XDG_DATA_HOME": str(out / "xdg")}
    proc = subprocess.run([python, __file__, "upstream", url, str(taxonomy), str(out)], capture_output=True,
                          text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}",
                "stderr_tail": proc.stderr[-3000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _call(url: str, path: str) -> dict[str, Any]:
    import httpx

    return httpx.post(url.removesuffix("/v1") + path, timeout=10).json()


@contextlib.contextmanager
def _server(args: argparse.Namespace, batch: bool) -> Iterator[str]:
    """The simulated endpoint in a subprocess, for the ``with`` block; yields its base URL."""
    sys.path.insert(0, str(ROOT / "tests"))
    from loopback import free_port  # not at the top: upstream's venv runs this file too
    from tinymodel import stop_process

    port = free_port()
    cmd = [sys.executable, __file__, "serve", str(port), str(args.slots), str(args.latency), str(args.items)]
    proc = subprocess.Popen(cmd + ([] if batch else ["--no-batch"]), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_process(proc)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        port, slots, latency, items = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
        asyncio.run(serve(port, slots, latency, items, batch="--no-batch" not in sys.argv))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "upstream":
        upstream_main(*sys.argv[2:5])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--slots", type=int, default=16)
    p.add_argument("--latency", type=float, default=0.1, help="seconds each sequence holds a slot")
    p.add_argument("--variants", type=int, default=2)
    p.add_argument("--items", type=int, default=5, help="questions per freeform question completion")
    p.add_argument("--upstream-python", default="/tmp/sdg-venv/bin/python")
    p.add_argument("--no-batch-leaves", type=int, default=2, help="leaves for the unbatched upstream run (0: skip)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sdg-"))
    taxonomy = work / "taxonomy"
    leaves = make_taxonomy(taxonomy, args.variants)
    report: dict[str, Any] = {"slots": args.slots, "latency_s": args.latency, "leaves": len(leaves),
                              "items": args.items}
    with _server(args, batch=True) as url:
        report["ours"] = {**run_ours(url, taxonomy, work / "ours", args.slots), "server": _call(url, "/stats")}
        if Path(args.upstream_python).exists():
            _call(url, "/reset")
            report["upstream"] = {**run_upstream(args.upstream_python, url, taxonomy, work / "up"),
                                  "server": _call(url, "/stats")}
    if args.no_batch_leaves and Path(args.upstream_python).exists():
        small = work / "small"
        for leaf in leaves[:: max(1, len(leaves) // args.no_batch_leaves)][: args.no_batch_leaves]:
            shutil.copytree(taxonomy / leaf, small / leaf)
        with _server(args, batch=False) as url:
            report["ours_small_nobatch"] = {**run_ours(url, small, work / "ours-small", args.slots),
                                            "server": _call(url, "/stats")}
            _call(url, "/reset")
            report["upstream_small_nobatch"] = {**run_upstream(args.upstream_python, url, small, work / "up-small"),
                                                "server": _call(url, "/stats")}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
