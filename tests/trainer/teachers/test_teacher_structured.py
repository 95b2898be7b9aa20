"""Structured outputs, the request and HTTP half (issue 17): a request carries its reply's JSON schema in its
key; the HTTP teacher sends it as OpenAI's strict ``response_format``, remembers a server that refuses it, and
asks again (new seed, counted) when a reply fails the schema because a server ignored it."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import asdict

import pytest

pytest.importorskip("httpx")

from openai_server import FakeOpenAIServer  # noqa: E402

from labrador.trainer.teachers.base import Request, complete_checked, schema_problem  # noqa: E402
from labrador.trainer.teachers.openai_http import OpenAIHTTPTeacher  # noqa: E402

SCORE = {"name": "judge", "schema": {"type": "object", "additionalProperties": False,
                                     "required": ["explanation", "score"],
                                     "properties": {"explanation": {"type": "string", "maxLength": 200},
                                                    "score": {"type": "integer", "minimum": 0, "maximum": 1}}}}
GOOD = json.dumps({"explanation": "fine", "score": 1})


def ask(schema: dict | None = None, **params) -> Request:
    return Request(messages=(("user", "Is this a good question?"),), schema=schema or "", **params)


def test_a_schema_is_part_of_the_key_and_a_free_text_request_keys_as_before():
    free = ask(seed=3)
    legacy = {k: v for k, v in asdict(free).items() if k != "schema"}
    blob = json.dumps(legacy, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert free.key() == hashlib.sha256(blob.encode()).hexdigest()  # earlier caches stay valid
    constrained = ask(SCORE, seed=3)
    assert constrained.key() != free.key()
    assert constrained.key() == ask(json.loads(json.dumps(SCORE)), seed=3).key()  # canonical, order-free
    assert constrained.response_format == {"type": "json_schema", "json_schema": {**SCORE, "strict": True}}
    assert free.response_format is None


@pytest.mark.parametrize("schema", [{"name": "x"}, {"name": "bad name!", "schema": {}}, {"name": "x", "schema": 1},
                                    "not json", {"name": "x", "schema": {}, "extra": 1}])
def test_a_malformed_schema_is_refused_before_anything_is_sent(schema):
    with pytest.raises(ValueError):
        ask(schema)


@pytest.mark.parametrize("text, ok", [
    (GOOD, True),
    ('{"explanation": "x", "score": 2}', False),  # out of range
    ('{"explanation": "x", "score": "1"}', False),  # wrong type
    ('{"explanation": "x", "score": 1, "extra": 0}', False),  # extra key
    ("[" * 100_000 + "]" * 100_000, False),  # nested past the parser's limit
    ('{"explanation": "' + "y" * 300_000 + '", "score": 1}', False),  # huge
    ("Sure! The score is 1.", False),  # prose
])
def test_hostile_replies_are_a_reason_never_a_crash(text, ok):
    canonical = ask(SCORE).schema
    assert (schema_problem(canonical, text) is None) is ok


def test_the_schema_goes_out_as_strict_response_format():
    with FakeOpenAIServer() as srv:
        srv.replies.extend([GOOD])
        teacher = OpenAIHTTPTeacher(srv.base_url)
        assert asyncio.run(teacher.complete(ask(SCORE, seed=1))) == [GOOD]
        assert srv.bodies[-1]["response_format"] == {"type": "json_schema", "json_schema": {**SCORE, "strict": True}}
        assert teacher.structured is True
        asyncio.run(teacher.complete(ask(seed=1)))
        assert "response_format" not in srv.bodies[-1]  # free text stays free


def test_a_server_that_refuses_the_field_is_remembered_for_the_run():
    with FakeOpenAIServer(format_mode="reject") as srv:
        srv.replies.extend([GOOD, GOOD])
        teacher = OpenAIHTTPTeacher(srv.base_url)

        async def twice() -> list[list[str]]:
            return [await teacher.complete(ask(SCORE, seed=s)) for s in (1, 2)]

        assert asyncio.run(twice()) == [[GOOD], [GOOD]]
        with_field = [b for b in srv.bodies if "response_format" in b]
        assert len(with_field) == 1 and len(srv.bodies) == 3  # refused once, resent without, never sent again
        assert teacher.structured is False


def test_a_reply_that_fails_its_schema_is_asked_again_with_a_new_seed_and_counted():
    with FakeOpenAIServer() as srv:  # ignores response_format, as `transformers serve` does
        srv.replies.extend(["Sure! It is good.", '{"score": 1}', GOOD])
        teacher = OpenAIHTTPTeacher(srv.base_url)
        assert asyncio.run(complete_checked(teacher, ask(SCORE, seed=5), 2)) == ([GOOD], 2)
        seeds = [b.get("seed") for b in srv.bodies]
        assert seeds[0] == 5 and len(set(seeds)) == 3  # every retry with its own seed
    with FakeOpenAIServer() as srv:
        srv.replies.extend(["prose", "more prose", "still prose"])
        teacher = OpenAIHTTPTeacher(srv.base_url)
        # the last answer stands and the parser counts the drop
        assert asyncio.run(complete_checked(teacher, ask(SCORE, seed=5), 1)) == (["more prose"], 1)
        assert len(srv.bodies) == 2
        assert asyncio.run(complete_checked(teacher, ask(seed=5), 2)) == (["still prose"], 0)  # free text: no check


def test_vllm_gets_the_schema_as_its_structured_outputs_parameter():
    """vLLM does not run here (no GPU): the parameters it would get are built by a pure function, checked
    against stand-ins for vLLM's two classes that record what they are given."""
    from types import SimpleNamespace

    from labrador.trainer.teachers.vllm_inprocess import sampling_params

    vllm = SimpleNamespace(SamplingParams=lambda **kw: kw,
                           sampling_params=SimpleNamespace(StructuredOutputsParams=lambda **kw: ("structured", kw)))
    constrained = sampling_params(vllm, ask(SCORE, seed=4, n=2, stop=("[End]",)))
    assert constrained == {"n": 2, "max_tokens": 256, "temperature": 0.7, "top_p": 1.0, "seed": 4,
                           "stop": ["[End]"], "structured_outputs": ("structured", {"json": SCORE["schema"]})}
    assert "structured_outputs" not in sampling_params(vllm, ask(seed=4))


@pytest.mark.parametrize("temperature, retried_at", [(0.0, 0.7), (0.3, 0.3)])
def test_a_failed_reply_is_asked_again_sampled_even_when_the_request_was_greedy(temperature, retried_at):
    """Greedy decoding of the same prompt returns the same failing reply, so a greedy request's retries are
    sampled; a sampled request keeps its temperature. Each retry has its own seed and asks for one reply."""
    from labrador.trainer.teachers.base import repair_replies

    schema = json.dumps({"name": "v", "schema": {"type": "object", "properties": {"score": {"type": "integer"}},
                                                   "required": ["score"]}})
    request = Request.chat([{"role": "user", "content": "score it"}], temperature=temperature, seed=5, n=2,
                           schema=schema)
    asked: list[Request] = []

    async def ask(r: Request) -> list[str]:
        asked.append(r)
        return ['{"score": 3}'] if len(asked) == 2 else ["not json"]

    texts, used = asyncio.run(repair_replies(ask, request, ["not json", '{"score": 9}'], retries=3))
    assert texts == ['{"score": 3}', '{"score": 9}'] and used == 2
    assert [r.temperature for r in asked] == [retried_at, retried_at]
    assert all(r.n == 1 and r.messages == request.messages for r in asked)
    assert len({r.seed for r in asked} | {request.seed}) == 3
