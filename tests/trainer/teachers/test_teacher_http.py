"""The HTTP teacher against real servers on 127.0.0.1.

- ``transformers serve`` serving the tiny local model offline on CPU: a real OpenAI-compatible stack;
- ``FakeOpenAIServer`` (tests/openai_server.py): faults on demand (429, 500, slow, malformed, hostile
  shapes) and a count of requests in flight, for retries, backoff and the concurrency cap.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")

from loopback import free_port  # noqa: E402
from openai_server import FakeOpenAIServer  # noqa: E402
from tinymodel import build_tiny_model, can_serve, serve_model, wait_until_served  # noqa: E402

from labrador.trainer.teachers import Request, Teacher, TeacherError, make_teacher  # noqa: E402
from labrador.trainer.teachers.base import sample_seed  # noqa: E402
from labrador.trainer.teachers.openai_http import OpenAIHTTPTeacher, parse_retry_after  # noqa: E402

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05}  # keep retry tests quick


def ask(text: str = "Write a question.", **params: object) -> Request:
    return Request.chat([("user", text)], **params)


def run(coro):
    return asyncio.run(coro)


async def complete_then_close(teacher: OpenAIHTTPTeacher, *requests: Request) -> list[list[str]]:
    try:
        return list(await asyncio.gather(*(teacher.complete(r) for r in requests)))
    finally:
        await teacher.aclose()


# -- fault injection ---------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


def test_concurrency_cap_is_never_exceeded(fake: FakeOpenAIServer) -> None:
    fake.delay_s = 0.05
    teacher = OpenAIHTTPTeacher(fake.base_url, max_concurrency=3, **FAST)
    results = run(complete_then_close(teacher, *[ask(f"q{i}", n=2) for i in range(12)]))
    assert all(len(r) == 2 for r in results)
    assert fake.max_in_flight == 3  # reached, never exceeded
    assert teacher.max_in_flight <= 3


@pytest.mark.parametrize(("cap", "clients"), [(1, 1), (16, 1), (17, 2), (33, 3)])
def test_requests_spread_over_one_client_per_sixteen_under_the_one_cap(fake: FakeOpenAIServer, cap: int,
                                                                       clients: int) -> None:
    fake.delay_s = 0.02
    teacher = OpenAIHTTPTeacher(fake.base_url, max_concurrency=cap, **FAST)
    opened: list[object] = []

    async def go() -> list[list[str]]:
        try:
            results = list(await asyncio.gather(*(teacher.complete(ask(f"q{i}")) for i in range(3 * cap))))
            opened.extend(teacher._clients)
            return results
        finally:
            await teacher.aclose()

    assert len(run(go())) == 3 * cap
    assert len(opened) == len(teacher.client_requests) == clients and all(c.is_closed for c in opened)
    assert sum(teacher.client_requests) == 3 * cap and min(teacher.client_requests) > 0
    assert max(teacher.client_max_in_flight) <= -(-cap // clients) <= 16  # one pool never serves more than 16
    assert teacher.max_in_flight == cap and fake.max_in_flight <= cap  # reached, never exceeded
    assert teacher.name == f"openai:{fake.base_url}#fake-model"  # however many clients


def test_429_then_success_honours_retry_after(fake: FakeOpenAIServer) -> None:
    fake.faults.append({"status": 429, "headers": {"Retry-After": "1"}})
    teacher = OpenAIHTTPTeacher(fake.base_url, **FAST)
    start = time.monotonic()
    [texts] = run(complete_then_close(teacher, ask("hi")))
    assert texts == ["echo[0] seed=None hi"]
    assert fake.chat_requests == 2
    assert time.monotonic() - start >= 0.9  # waited as told, not the 10 ms backoff


def test_transient_5xx_and_timeouts_are_retried(fake: FakeOpenAIServer) -> None:
    fake.faults.extend([{"status": 503}, {"sleep": 1.0}, {"status": 502}])
    teacher = OpenAIHTTPTeacher(fake.base_url, timeout_s=0.3, max_attempts=4, **FAST)
    assert run(complete_then_close(teacher, ask("hi"))) == [["echo[0] seed=None hi"]]
    assert fake.chat_requests == 4


def test_persistent_500_fails_after_max_attempts(fake: FakeOpenAIServer) -> None:
    fake.always = {"status": 500}
    teacher = OpenAIHTTPTeacher(fake.base_url, max_attempts=3, **FAST)
    with pytest.raises(TeacherError, match="after 3 attempts.*HTTP 500"):
        run(complete_then_close(teacher, ask()))
    assert fake.chat_requests == 3


def test_connection_refused_is_a_teacher_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    teacher = OpenAIHTTPTeacher(url, model="m", max_attempts=2, **FAST)
    with pytest.raises(TeacherError, match="after 2 attempts.*ConnectError"):
        run(complete_then_close(teacher, ask()))


def test_malformed_json_is_a_teacher_error(fake: FakeOpenAIServer) -> None:
    fake.faults.append({"raw": b'{"choices": [ not json'})
    teacher = OpenAIHTTPTeacher(fake.base_url, **FAST)
    with pytest.raises(TeacherError, match="malformed JSON"):
        run(complete_then_close(teacher, ask()))
    assert fake.chat_requests == 1  # a 200 with garbage is not retried


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2],
        {"choices": "nope"},
        {"choices": []},
        {"choices": [None]},
        {"choices": [{"message": "text"}]},
        {"choices": [{"message": {"content": 5}}]},
        {"choices": [{"message": {"role": "assistant", "content": None}}]},
        {"error": {"message": "model overloaded"}},
    ],
)
def test_hostile_response_shapes_are_teacher_errors(fake: FakeOpenAIServer, payload: object) -> None:
    fake.faults.append({"json": payload})
    teacher = OpenAIHTTPTeacher(fake.base_url, **FAST)
    with pytest.raises(TeacherError):
        run(complete_then_close(teacher, ask()))


def test_client_errors_are_not_retried(fake: FakeOpenAIServer) -> None:
    fake.always = {"status": 400}
    teacher = OpenAIHTTPTeacher(fake.base_url, **FAST)
    with pytest.raises(TeacherError, match="HTTP 400"):
        run(complete_then_close(teacher, ask()))
    assert fake.chat_requests == 1


def test_n_in_one_request_when_supported(fake: FakeOpenAIServer) -> None:
    teacher = OpenAIHTTPTeacher(fake.base_url, **FAST)
    [texts] = run(complete_then_close(teacher, ask("hi", n=3, seed=5)))
    assert texts == [f"echo[{i}] seed=5 hi" for i in range(3)]
    assert teacher.n_supported is True and fake.chat_requests == 1


@pytest.mark.parametrize("n_mode", ["ignore", "reject"])
def test_n_fallback_to_single_requests_is_remembered(n_mode: str) -> None:
    with FakeOpenAIServer(n_mode=n_mode) as srv:
        teacher = OpenAIHTTPTeacher(srv.base_url, **FAST)
        first, second = run(complete_then_close(teacher, ask("a", n=3, seed=5), ask("b", n=2)))
        assert teacher.n_supported is False
        seeds = [sample_seed(5, k) for k in range(3)]
        assert first == [f"echo[0] seed={s} a" for s in seeds] and len(set(seeds)) == 3
        assert second == ["echo[0] seed=None b"] * 2
        srv.bodies.clear()
        run(complete_then_close(teacher, ask("c", n=2)))
        assert [b.get("n", 1) for b in srv.bodies] == [1, 1]  # no more n > 1 attempts


def test_model_discovery_and_url_forms(fake: FakeOpenAIServer) -> None:
    teacher = make_teacher(fake.base_url)
    assert teacher.name == f"openai:{fake.base_url}#fake-model"
    bare = fake.base_url.removesuffix("/v1")
    assert make_teacher(bare + "/").name == teacher.name  # bare host gets /v1
    assert make_teacher(f"{fake.base_url}#other").name == f"openai:{fake.base_url}#other"
    with pytest.raises(ValueError, match="unrecognised teacher spec"):  # the openai: prefix shim is gone
        make_teacher(teacher.name)
    run(complete_then_close(teacher, ask()))
    assert fake.bodies[-1]["model"] == "fake-model"
    fake.models = ()
    with pytest.raises(TeacherError, match="no model"):
        make_teacher(fake.base_url)


def test_api_key_comes_from_env_and_never_leaks(fake: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-secret-123"
    monkeypatch.setenv("LABRADOR_TEST_KEY", secret)
    teacher = OpenAIHTTPTeacher(fake.base_url, api_key_env="LABRADOR_TEST_KEY", **FAST)
    run(complete_then_close(teacher, ask()))
    assert fake.auth_headers[-1] == f"Bearer {secret}"
    assert secret not in teacher.name and secret not in repr(teacher)
    fake.always = {"status": 401, "body": f"invalid key {secret}"}  # a server echoing the key back
    with pytest.raises(TeacherError, match="HTTP 401") as info:
        run(complete_then_close(teacher, ask()))
    assert secret not in str(info.value) and "***" in str(info.value)
    monkeypatch.delenv("LABRADOR_TEST_KEY")
    with pytest.raises(ValueError, match="LABRADOR_TEST_KEY"):
        OpenAIHTTPTeacher(fake.base_url, api_key_env="LABRADOR_TEST_KEY")
    with pytest.raises(ValueError, match="environment variable"):
        OpenAIHTTPTeacher("http://user:pw@127.0.0.1:1/v1", model="m")


def test_stop_is_applied_even_if_the_server_ignores_it(fake: FakeOpenAIServer) -> None:
    teacher = OpenAIHTTPTeacher(fake.base_url, **FAST)
    [texts] = run(complete_then_close(teacher, ask("hello world", stop=("world",))))
    assert texts == ["echo[0] seed=None hello "]
    assert fake.bodies[-1]["stop"] == ["world"]


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past


# -- transformers serve ------------------------------------------------------------------------------
# Last in the file on purpose: the server process is spawned (autouse) before the first test of the
# module and boots (~10 s, mostly imports) while the fault-injection tests above run.


ServeProcess = tuple[subprocess.Popen, str, Path, Path]  # process, base_url, model_dir, log file


@pytest.fixture(scope="module", autouse=True)
def serve_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess | None]:
    """Spawn ``transformers serve MODEL_DIR`` offline on a free port without waiting for it."""
    if not can_serve():
        yield None  # the fault-injection tests need none of it
        return
    model_dir = build_tiny_model(tmp_path_factory.mktemp("served-model"))
    with serve_model(model_dir, tmp_path_factory.mktemp("hf-home")) as (proc, url, log):
        yield proc, url, model_dir, log


@pytest.fixture(scope="module")
def served(serve_process: ServeProcess | None) -> tuple[str, Path]:
    """(base_url, model_dir) once ``/health`` answers; bounded wait, log shown on failure."""
    if serve_process is None:
        pytest.skip("needs torch and transformers[serving]")
    proc, url, model_dir, log = serve_process
    wait_until_served(proc, url, log)
    return url, model_dir


def test_transformers_serve_end_to_end(served: tuple[str, Path]) -> None:
    url, model_dir = served
    teacher = make_teacher(f"{url}#{model_dir}", max_concurrency=2, tokenizer_path=model_dir, **FAST)
    assert isinstance(teacher, OpenAIHTTPTeacher) and isinstance(teacher, Teacher)
    assert teacher.name == f"openai:{url}#{model_dir}"
    same = ask("Ask about foxes.", max_tokens=10, seed=7, temperature=1.0)
    other = ask("Ask about foxes.", max_tokens=10, seed=8, temperature=1.0)
    # transformers serve ignores n: the teacher must notice, remember, and fetch the rest singly.
    many = ask("Ask about Paris.", n=3, max_tokens=6, seed=1)
    a, b, three, *rest = run(
        complete_then_close(teacher, same, other, many, *[ask(f"q{i}", max_tokens=4) for i in range(4)])
    )
    assert len(a) == len(b) == 1 and all(isinstance(t, str) for t in a + b)
    assert len(three) == 3 and teacher.n_supported is False
    assert [len(r) for r in rest] == [1] * 4
    assert teacher.max_in_flight <= 2
    # Sequential requests with the same seed reproduce: the server seeds torch per request (globally,
    # so only requests that do not overlap are reproducible).
    again = OpenAIHTTPTeacher(url, model=str(model_dir), max_concurrency=1)
    first, second, third = run(complete_then_close(again, same, same, other))
    assert first == second != third


def test_count_tokens_with_and_without_tokenizer(served: tuple[str, Path]) -> None:
    from transformers import AutoTokenizer

    url, model_dir = served
    text = "The quick brown fox answers a question about Paris."
    exact = OpenAIHTTPTeacher(url, model=str(model_dir), tokenizer_path=model_dir)
    expected = len(AutoTokenizer.from_pretrained(model_dir).encode(text, add_special_tokens=False))
    assert exact.count_tokens(text) == expected
    estimate = OpenAIHTTPTeacher(url, model=str(model_dir))
    assert estimate.count_tokens(text) == 12  # ceil(9 words * 1.3)
