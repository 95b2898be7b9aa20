"""The freeform pipeline end to end through the real HTTP teacher, against OpenAI-compatible servers on 127.0.0.1.

- ``FakeOpenAIServer`` echoing prompts back: real sockets, retries and caps; exact drop counters;
- a scripted subclass that answers like a good teacher: every stage runs, samples come over HTTP;
- ``transformers serve`` with the tiny random model: a real stack whose output is gibberish, so the
  samples are dropped by reason (and ``n`` is handled although that server ignores it).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

httpx = pytest.importorskip("httpx")

from openai_server import FakeOpenAIServer  # noqa: E402
from scripted_teacher import ScriptedServer  # noqa: E402
from tinymodel import build_tiny_model, can_serve, serve_model, wait_until_served  # noqa: E402

from labrador.trainer.sdg import LeafResult, generate_leaf  # noqa: E402
from labrador.trainer.sdg.prompting import BUILTIN_DIR  # noqa: E402
from labrador.trainer.teachers import Request  # noqa: E402
from labrador.trainer.teachers.openai_http import OpenAIHTTPTeacher  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
HAIKU = "compositional_skills/writing/freeform/haiku/qna.yaml"
SEEDS = len(yaml.safe_load((ROOT / "taxonomy" / HAIKU).read_bytes())["seed_examples"])
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05}
PROMPTS = ("freeform_questions", "freeform_question_judge", "freeform_answer", "freeform_pair_judge")


def run_leaf(teacher: OpenAIHTTPTeacher, out: Path | None = None, repo: Path | None = None) -> LeafResult:
    async def go() -> LeafResult:
        try:
            return await generate_leaf(HAIKU, (ROOT / "taxonomy" / HAIKU).read_bytes(), teacher, out,
                                       taxonomy_repo=repo)
        finally:
            await teacher.aclose()

    return asyncio.run(go())


def override_prompts(repo: Path, **changes: dict[str, Any]) -> Path:
    """A taxonomy repository whose ``sdg/prompts`` override some fields of the built-in freeform prompts."""
    folder = repo / "sdg" / "prompts"
    folder.mkdir(parents=True, exist_ok=True)
    for name in PROMPTS:
        raw = yaml.safe_load((BUILTIN_DIR / f"{name}.yaml").read_text())
        raw.update(changes.get("all", {}), **changes.get(name, {}))
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(raw))
    return repo


# -- echo server: prompts come back verbatim ------------------------------------------------------------


@pytest.mark.parametrize("n_mode", ["ok", "ignore"])
def test_echoed_prompts_fail_their_schema_are_asked_again_and_dropped(tmp_path: Path, n_mode: str) -> None:
    repo = override_prompts(tmp_path / "repo", freeform_questions={"n": 2})
    with FakeOpenAIServer(n_mode=n_mode) as srv:
        teacher = OpenAIHTTPTeacher(srv.base_url, max_concurrency=3, **FAST)
        res = run_leaf(teacher, tmp_path / "out", repo)
        bodies = list(srv.bodies)
    assert res.status == "ok" and res.kept == 0 and res.generated == 0
    steps = {s["step"]: s for s in res.steps}
    # An echoed prompt is not the JSON it asks for: each completion is asked again twice (new seeds), then
    # dropped as a parse error; no judge is reached.
    gen = steps["1:generate:freeform_questions"]
    assert gen["requests"] == gen["sent"] == SEEDS and gen["out"] == 0
    assert gen["dropped"] == {"parse_error": 2 * SEEDS} and gen["schema_retries"] == 2 * 2 * SEEDS
    assert gen["structured"] == "schema" and res.structured == "schema" and res.schema_retries == 4 * SEEDS
    assert steps["3:judge:freeform_question_judge"]["sent"] == 0
    assert res.dropped == {"parse_error": 2 * SEEDS}
    # Requests flowed as sent: n=2 in one body when the server honours n, else two bodies of n=1; every
    # body carries the schema and each its own seed.
    question_bodies = [b for b in bodies if "Write 20 new requests" in b["messages"][-1]["content"]]
    assert len(bodies) == len(question_bodies)
    assert all(b["response_format"]["json_schema"]["name"] == "freeform_questions" for b in bodies)
    first = [b for b in question_bodies if b.get("n", 1) == 2]
    if n_mode == "ok":
        assert len(first) == SEEDS and len(question_bodies) == SEEDS + 4 * SEEDS
    else:
        # Requests sent before the server's first answer still ask n=2 (and get one choice); the rest go singly.
        assert len(first) <= SEEDS and len(question_bodies) == 2 * SEEDS + 4 * SEEDS
        assert teacher.n_supported is False
    assert len({b["seed"] for b in question_bodies}) == len(question_bodies)


# -- a scripted "good teacher": every stage runs --------------------------------------------------------


def test_every_stage_runs_over_http_with_retries_and_the_cap(tmp_path: Path) -> None:
    with ScriptedServer(delay_s=0.01) as srv:
        srv.faults.extend([{"status": 503}, {"status": 429, "headers": {"Retry-After": "0"}}])
        teacher = OpenAIHTTPTeacher(srv.base_url, max_concurrency=4, **FAST)
        res = run_leaf(teacher, tmp_path / "out")
        requests, peak = srv.chat_requests, srv.max_in_flight
    questions = 3 * SEEDS
    assert res.status == "ok", res.error
    assert res.generated == questions and res.kept == questions and res.dropped == {}
    assert [s["sent"] for s in res.steps if s["type"] in ("generate", "judge")] == [SEEDS] + [questions] * 3
    assert requests == SEEDS + 3 * questions + 2  # plus the two retried faults
    assert 1 < peak <= 4 and teacher.max_in_flight <= 4
    rows = [json.loads(line) for line in (res.folder / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == questions and all(r["messages"][2]["content"].startswith("A haiku over HTTP") for r in rows)
    assert all(r["teacher"] == f"openai:{srv.base_url}#fake-model" for r in rows)
    assert all(r["judge_scores"] == {"freeform_question_judge": 1, "freeform_pair_judge": 3} for r in rows)


def test_high_concurrency_is_sharded_over_clients_under_one_cap() -> None:
    from labrador.trainer.teachers.config import TeacherSettings, build_teacher

    with FakeOpenAIServer(delay_s=0.05) as srv:
        teacher = build_teacher(TeacherSettings(spec=srv.base_url, max_concurrency=40))
        assert isinstance(teacher, OpenAIHTTPTeacher) and teacher.max_concurrency == 40  # one teacher, one cap
        assert teacher.name == f"openai:{srv.base_url}#fake-model"  # as one client: same cache keys
        clients: list[Any] = []

        async def go() -> list[list[str]]:
            try:
                texts = list(await asyncio.gather(*(teacher.complete(Request.chat([("user", f"q{i}")]))
                                                    for i in range(120))))
                clients.extend(teacher._clients)
                return texts
            finally:
                await teacher.aclose()

        texts = asyncio.run(go())
        peak = srv.max_in_flight
    assert [t[0].split(" ", 2)[2] for t in texts] == [f"q{i}" for i in range(120)]
    assert 1 < peak <= 40 and teacher.max_in_flight == 40  # the one cap, reached across clients, never exceeded
    assert len(teacher.client_requests) == 3 and sum(teacher.client_requests) == 120  # ceil(40 / 16) clients
    assert all(n > 0 for n in teacher.client_requests)  # every client did work
    assert all(0 < p <= 14 for p in teacher.client_max_in_flight)  # at most ceil(40 / 3) <= 16 on one client
    assert len(clients) == 3 and all(c.is_closed for c in clients)  # aclose closed every client
    assert teacher.model == "fake-model"  # discovered once, for all clients


# -- transformers serve: a real server, gibberish output -------------------------------------------------
# Last in the file: the server is spawned before the first test of the module and boots meanwhile.


@pytest.fixture(scope="module", autouse=True)
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen, str, Path, Path] | None]:
    if not can_serve():
        yield None
        return
    model = build_tiny_model(tmp_path_factory.mktemp("sdg-served-model"))
    config = json.loads((model / "config.json").read_text())
    config["max_position_embeddings"] = 4096  # room for the real (long) LAB prompts; RoPE does not care
    (model / "config.json").write_text(json.dumps(config))
    with serve_model(model, tmp_path_factory.mktemp("sdg-hf-home")) as (proc, url, log):
        yield proc, url, model, log


def test_tiny_model_over_transformers_serve(serve, tmp_path: Path) -> None:
    if serve is None:
        pytest.skip("needs torch and transformers[serving]")
    proc, url, model, log = serve
    wait_until_served(proc, url, log)
    repo = override_prompts(tmp_path / "repo", all={"max_tokens": 12}, freeform_questions={"n": 2})
    teacher = OpenAIHTTPTeacher(f"{url}#{model}", max_concurrency=3, tokenizer_path=model, **FAST)
    res = run_leaf(teacher, tmp_path / "out", repo)
    assert res.status == "ok", res.error  # no request failed: gibberish is data, not an error
    gen = res.steps[1]
    assert gen["step"] == "1:generate:freeform_questions" and gen["sent"] == SEEDS
    assert teacher.n_supported is False  # the server ignores n: each second sample was fetched alone
    # The server ignores response_format (it warns): 2 completions per seed of gibberish fail the schema, are
    # each asked again twice with new seeds, and are then dropped with a named reason; nothing is kept.
    assert gen["structured"] == "schema" and gen["schema_retries"] == 2 * 2 * SEEDS
    assert res.kept == 0 and gen["dropped"].get("parse_error", 0) + gen["dropped"].get("truncated", 0) == 2 * SEEDS
    assert 0 < teacher.max_in_flight <= 3
    manifest = json.loads((res.folder / "manifest.json").read_text())
    assert manifest["complete"] and manifest["counts"]["dropped"] == res.dropped


def test_an_oversized_reply_is_a_counted_failure_never_checkpointed_and_the_rerun_asks_again(tmp_path: Path) -> None:
    """Issue 29.9: a 2 MB reply (over the bound a later prompt could hold) is a teacher error of its leaf: the
    leaf stays partial, nothing of it reaches the checkpoint, and a rerun asks that request again and finishes."""
    reply = {"role": "assistant", "content": "x" * 2_000_000}
    huge = {"model": "fake-model", "choices": [{"index": 0, "message": reply}]}
    with ScriptedServer() as srv:
        srv.faults.append({"json": huge})
        first = run_leaf(OpenAIHTTPTeacher(srv.base_url, max_concurrency=1, **FAST), tmp_path / "out")
    assert first.status == "partial" and first.dropped.get("teacher_error") == 1 and "over the bound" in first.error
    checkpoints = list((tmp_path / "out" / ".checkpoints").glob("*.jsonl"))
    assert checkpoints and all(len(line) < 1_000_000 for f in checkpoints for line in f.read_text().splitlines())
    with ScriptedServer() as srv:
        again = run_leaf(OpenAIHTTPTeacher(srv.base_url, max_concurrency=1, **FAST), tmp_path / "out")
        asked = srv.chat_requests
    assert again.status == "ok" and asked >= 1, again.error
