"""One teacher over several endpoints, against real loopback servers: the load is spread evenly under the
caps, an endpoint stopped mid-run is benched and the rest finish on the other, endpoints serving different
models are refused at start, and the generation cache does not depend on which endpoint answered (a rerun,
even with the endpoints in another order, asks nothing again)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")

from openai_server import FakeOpenAIServer  # noqa: E402
from scripted_teacher import ScriptedServer  # noqa: E402

from labrador.trainer.teachers import Request, TeacherError, make_teacher  # noqa: E402
from labrador.trainer.teachers.config import TeacherConfigError, join_endpoints, load_teacher  # noqa: E402
from labrador.trainer.teachers.pool import PooledTeacher  # noqa: E402
from labrador.validators.config import ConfigError  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
HAIKU = "compositional_skills/writing/freeform/haiku/qna.yaml"
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.02}


def ask_all(teacher: PooledTeacher, count: int) -> list[list[str]]:
    async def go() -> list[list[str]]:
        try:
            return list(await asyncio.gather(*(teacher.complete(Request.chat([("user", f"q{i}")], seed=i))
                                               for i in range(count))))
        finally:
            await teacher.aclose()

    return asyncio.run(go())


def test_the_load_is_spread_evenly_under_both_caps():
    with FakeOpenAIServer(delay_s=0.03) as a, FakeOpenAIServer(delay_s=0.03) as b:
        pool = make_teacher(join_endpoints([a.base_url, b.base_url]), max_concurrency=6, per_endpoint=2, **FAST)
        assert isinstance(pool, PooledTeacher) and pool.name == "openai-pool#fake-model"
        replies = ask_all(pool, 40)
        assert [r[0].split(" ", 2)[2] for r in replies] == [f"q{i}" for i in range(40)]  # each answered once
        assert a.chat_requests + b.chat_requests == 40 and abs(a.chat_requests - b.chat_requests) <= 2
        assert a.max_in_flight <= 2 and b.max_in_flight <= 2 and pool.max_in_flight <= 4  # per-endpoint cap
        assert pool.sent == [a.chat_requests, b.chat_requests]


def test_an_endpoint_stopped_mid_run_is_benched_and_the_other_finishes():
    with FakeOpenAIServer(delay_s=0.02) as a:
        b = FakeOpenAIServer(delay_s=0.02).__enter__()
        pool = make_teacher(join_endpoints([a.base_url, b.base_url]), max_concurrency=4, backoff_s=60, **FAST)

        async def go() -> list[list[str]]:
            first = [await pool.complete(Request.chat([("user", f"q{i}")], seed=i)) for i in range(4)]
            b.__exit__(None, None, None)  # the second server goes away halfway
            rest = await asyncio.gather(*(pool.complete(Request.chat([("user", f"q{i}")], seed=i))
                                          for i in range(4, 20)))
            await pool.aclose()
            return first + list(rest)

        replies = asyncio.run(go())
    assert len(replies) == 20 and all(r[0].endswith(f"q{i}") for i, r in enumerate(replies))
    # every request was answered exactly once (a request that failed on b never reached its handler), b
    # answered its share of the first four and at most what its open keep-alive connection still carried
    assert a.chat_requests + b.chat_requests == 20 and 2 <= b.chat_requests <= 4
    down = pool.endpoints[1]
    assert down.out_until > 0 and down.errors and down.answered == b.chat_requests  # benched, the reason kept


def test_every_endpoint_down_is_an_error_not_a_hang():
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        pool = make_teacher(join_endpoints([a.base_url, b.base_url]), backoff_s=0.05, max_tries=4, **FAST)
        a.always = b.always = {"status": 503}
        with pytest.raises(TeacherError, match="no endpoint answered after 4 tries"):
            ask_all(pool, 1)


def test_endpoints_serving_different_models_are_refused_at_start():
    with FakeOpenAIServer() as a, FakeOpenAIServer(models=("another-model",)) as b:
        with pytest.raises(ValueError, match="serve different models") as info:
            make_teacher(join_endpoints([a.base_url, b.base_url]))
        assert "fake-model" in str(info.value) and "another-model" in str(info.value)
        with pytest.raises(ValueError, match="listed twice"):
            make_teacher(join_endpoints([a.base_url, a.base_url]))


def test_settings_take_a_list_of_endpoints(tmp_path):
    cfg = tmp_path / "labrador.toml"
    cfg.write_text('[teacher]\nspec = ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]\nendpoint_concurrency = 4\n')
    s = load_teacher(cfg)
    assert s.spec == ("http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1") and s.endpoint_concurrency == 4
    cfg.write_text('[teacher]\nspec = ["http://127.0.0.1:1/v1", "embedded"]\n')
    with pytest.raises(TeacherConfigError, match="only be http"):
        load_teacher(cfg)
    cfg.write_text('[teacher]\nendpoint_backoff_s = -1.0\n')
    with pytest.raises(ConfigError, match="endpoint_backoff_s: must be 0 or more"):
        load_teacher(cfg)


def test_generation_over_two_endpoints_is_cached_whichever_answered(tmp_path):
    labrador = str(Path(sys.executable).with_name("labrador"))
    with ScriptedServer(delay_s=0.01) as a, ScriptedServer(delay_s=0.01) as b:
        def generate(*urls: str) -> subprocess.CompletedProcess:
            flags = [x for u in urls for x in ("--teacher", u)]
            return subprocess.run([labrador, "generate", *flags, "--out", str(tmp_path / "out"), "--no-mix",
                                   "--taxonomy", str(ROOT / "taxonomy"), str(ROOT / "taxonomy" / HAIKU)],
                                  capture_output=True, text=True, timeout=300)

        first = generate(a.base_url, b.base_url)
        assert first.returncode == 0, first.stderr[-2000:]
        sent = a.chat_requests + b.chat_requests
        assert a.chat_requests > 0 and b.chat_requests > 0
        again = generate(b.base_url, a.base_url)  # another order: the same teacher, the same cache
        assert again.returncode == 0, again.stderr[-2000:]
        assert a.chat_requests + b.chat_requests == sent  # nothing asked twice
    samples = list((tmp_path / "out").rglob("samples.jsonl"))
    assert samples and "openai-pool#fake-model" in samples[0].read_text()


def _pool(*urls: str, **options) -> tuple[PooledTeacher, list[str]]:
    said: list[str] = []
    pool = make_teacher(tuple(urls), say=said.append, **{**FAST, **options})
    return pool, said


def test_an_endpoint_that_switches_model_mid_run_is_left_out_and_its_requests_asked_elsewhere():
    """Issue 29.4: a reply naming another model is refused, never returned (nor cached as the pool's)."""
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        pool, said = _pool(a.base_url, b.base_url, max_concurrency=4)
        b.answer_as = "another-model"
        replies = ask_all(pool, 18)
    assert [r[0].rsplit(" ", 1)[1] for r in replies] == [f"q{i}" for i in range(18)]
    assert pool.endpoints[1].answered == 0 and pool.endpoints[0].answered == 18
    assert pool.endpoints[1].out_until == float("inf") and b.chat_requests <= 4  # left out after its first replies
    assert len(said) == 1 and b.base_url in said[0] and "another-model" in said[0]


def test_a_key_refusal_non_json_and_json_nested_too_deep_each_bench_the_endpoint():
    """Issue 29.8 and 29.13: every failure of an endpoint counts; a 401 leaves it out for the run, naming it."""
    for fault, for_run in (({"status": 401, "body": "bad key"}, True), ({"raw": b"<html>oops"}, False),
                           ({"raw": b"[" * 100_000 + b"]" * 100_000}, False)):
        with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
            pool, said = _pool(a.base_url, b.base_url, max_concurrency=2, backoff_s=60)
            b.always = fault
            replies = ask_all(pool, 9)
            assert len(replies) == 9 and pool.endpoints[0].answered == 9, fault
            assert b.chat_requests <= 3 and pool.endpoints[1].out_until > 0, fault
            assert (pool.endpoints[1].out_until == float("inf")) is for_run
            if for_run:
                assert "refused" in said[0] and b.base_url in said[0]
    with FakeOpenAIServer() as a:
        a.models_payload = b"[" * 100_000 + b"]" * 100_000
        with pytest.raises(TeacherError, match="malformed JSON"):
            make_teacher(a.base_url)


def test_a_trickling_endpoint_is_cut_at_the_request_deadline_and_benched(tmp_path):
    """Issue 29.7: a whole attempt has a deadline (`request_timeout_s`), so a slowloris cannot hold a request."""
    cfg = tmp_path / "labrador.toml"
    cfg.write_text('[teacher]\nrequest_timeout_s = 0.5\n')
    assert load_teacher(cfg, env={}).request_timeout_s == 0.5
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        pool, _ = _pool(a.base_url, b.base_url, max_concurrency=2, timeout_s=0.5, backoff_s=60)
        b.always = {"trickle": 0.05}  # a reply of a few hundred bytes takes far longer than the deadline

        async def bounded() -> list[list[str]]:
            return await asyncio.wait_for(asyncio.to_thread(ask_all, pool, 6), 60)

        replies = asyncio.run(bounded())
    assert len(replies) == 6 and pool.endpoints[0].answered == 6
    assert pool.endpoints[1].out_until > 0 and "within 0.5 s" in pool.endpoints[1].errors[-1]


def test_an_endpoint_down_at_start_is_left_out_and_one_or_two_endpoints_share_the_cache_key():
    """Issue 29.20: the pool starts on the healthy endpoints and says which is down; one endpoint or a pool of
    the same model keys the cache the same."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"  # nothing listens there once closed
    with FakeOpenAIServer() as a:
        pool, said = _pool(a.base_url, dead, member_attempts=1)
        assert len(pool.endpoints) == 1 and len(said) == 1 and dead in said[0] and "down at start" in said[0]
        assert len(ask_all(pool, 3)) == 3
        assert make_teacher(a.base_url).cache_id == pool.cache_id


def test_the_pool_says_structured_false_once_an_endpoint_refused_the_schema():
    """Issue 29.19: the manifest's `structured` reads the pool's, which tells the truth."""
    schema = {"name": "r", "schema": {"type": "object", "properties": {"x": {"type": "string"}}}}
    with FakeOpenAIServer(format_mode="reject") as a, FakeOpenAIServer(format_mode="reject") as b:
        pool, _ = _pool(a.base_url, b.base_url)
        assert pool.structured is None

        async def go() -> None:
            await asyncio.gather(*(pool.complete(Request.chat([("user", f"q{i}")], seed=i, schema=schema))
                                   for i in range(4)))
            await pool.aclose()

        asyncio.run(go())
    assert pool.structured is False
