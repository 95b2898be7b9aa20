"""The transformers teacher on a tiny locally built model: real tokenizer, real ``generate``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")


from labrador.trainer.teachers import Request, Teacher, TeacherError, make_teacher  # noqa: E402
from labrador.trainer.teachers.local_transformers import TransformersTeacher  # noqa: E402


def ask(text: str, **params: object) -> Request:
    return Request.chat([("system", "You write quiz questions."), ("user", text)], **params)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """A 2-layer model gains nothing from intra-op threads, and on a busy 2-core box their spinning
    makes ``generate`` ~10x slower; restore the setting for whatever runs next."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def teacher(tiny_model_dir: Path) -> TransformersTeacher:
    t = make_teacher(str(tiny_model_dir), batch_size=8, max_wait_s=0.05)
    assert isinstance(t, TransformersTeacher)
    return t


def run(coro):  # each test owns its event loop; the teacher follows it
    return asyncio.run(coro)


def test_identity_and_protocol(teacher: TransformersTeacher, tiny_model_dir: Path) -> None:
    assert isinstance(teacher, Teacher)
    assert teacher.name == f"transformers:{tiny_model_dir.resolve()}"
    assert make_teacher(f"transformers:{tiny_model_dir}").name == teacher.name


def test_n_completions_respect_max_tokens(teacher: TransformersTeacher) -> None:
    texts = run(teacher.complete(ask("Write a question about foxes.", n=3, max_tokens=8, seed=1)))
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert len(set(texts)) > 1, "the n samples should differ"
    # Greedy: 3 tokens are a prefix of 24 (a cut inside a UTF-8 sequence decodes to U+FFFD).
    (short,) = run(teacher.complete(ask("Prefix?", max_tokens=3, temperature=0.0)))
    (full,) = run(teacher.complete(ask("Prefix?", max_tokens=24, temperature=0.0)))
    assert full.startswith(short.rstrip("\ufffd")) and len(short) < len(full)


def test_same_seed_same_output_even_inside_a_batch(teacher: TransformersTeacher) -> None:
    req = ask("Question about Paris?", n=2, max_tokens=12, seed=42, temperature=1.0)
    alone = run(teacher.complete(req))
    assert run(teacher.complete(req)) == alone

    async def mixed() -> list[list[str]]:
        others = [ask("x" * i, n=2, max_tokens=4 + i, seed=i, temperature=0.5) for i in range(3)]
        return await asyncio.gather(*(teacher.complete(r) for r in [*others, req]))

    assert run(mixed())[-1] == alone
    other_seed = run(teacher.complete(ask("Question about Paris?", n=2, max_tokens=12, seed=43)))
    assert other_seed != alone


def test_greedy_and_stop(teacher: TransformersTeacher) -> None:
    req = ask("Greedy please", max_tokens=16, temperature=0.0)
    (full,) = run(teacher.complete(req))
    assert run(teacher.complete(req)) == [full]
    if len(full) > 3:
        stop = full[2:4]
        (cut,) = run(teacher.complete(ask("Greedy please", max_tokens=16, temperature=0.0, stop=(stop,))))
        assert cut == full[: full.find(stop)]


def test_concurrent_requests_are_batched(tiny_model_dir: Path) -> None:
    teacher = TransformersTeacher(tiny_model_dir, batch_size=4, max_wait_s=0.05)

    async def go() -> list[list[str]]:
        try:
            reqs = [ask(f"q{i}", n=1 + i % 2, max_tokens=6, seed=i) for i in range(10)]
            return await asyncio.gather(*(teacher.complete(r) for r in reqs))
        finally:
            await teacher.aclose()

    results = run(go())
    assert [len(r) for r in results] == [1 + i % 2 for i in range(10)]
    assert 3 <= teacher.batches_run < 10  # at most 4 per batch, and far fewer batches than requests
    with pytest.raises(TeacherError, match="closed"):
        run(teacher.complete(ask("late")))


def test_count_tokens_uses_the_tokenizer(teacher: TransformersTeacher, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "The quick brown fox answers a question about Paris."
    assert teacher.count_tokens(text) == len(tok.encode(text, add_special_tokens=False))
    assert teacher.count_tokens(text) != len(text.split())  # not the word estimate
    assert teacher.count_tokens("") == 0


def test_request_key_is_canonical() -> None:
    a = Request.chat([{"role": "user", "content": "hi"}], temperature=1, stop=["x"])
    b = Request(messages=(("user", "hi"),), temperature=1.0, stop=("x",))
    assert a == b and a.key() == b.key() and len(a.key()) == 64
    assert a.key() != Request(messages=(("user", "hi"),), temperature=1.0, stop=("x",), seed=0).key()
    with pytest.raises(ValueError, match="role"):
        Request(messages=(("robot", "hi"),))


def test_make_teacher_rejects_unknown_specs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vllm:PATH"):
        make_teacher(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="http"):
        make_teacher("ftp://example.org/model")


def test_vllm_missing_gives_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if vLLM were not installed (CPU machines)
    with pytest.raises(ImportError, match=r"labrador-lab\[gpu\]"):
        make_teacher(f"vllm:{tmp_path}")


JUDGE = {"name": "judge", "schema": {"type": "object", "additionalProperties": False, "required": ["score", "ok"],
                                     "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 1},
                                                    "ok": {"type": "boolean"}}}}


def test_a_schema_constrains_every_row_and_the_batch_equals_one_row_at_a_time(
        teacher: TransformersTeacher, tiny_model_dir: Path) -> None:
    """xgrammar masks each constrained row (free rows in the same batch stay free): an untrained model at
    temperature 1.0 still answers valid JSON of the schema, whatever the seed and the batch."""
    pytest.importorskip("xgrammar")
    from labrador.trainer.teachers.base import schema_problem

    constrained = [ask("Score this.", seed=s, temperature=1.0, max_tokens=24, schema=JUDGE) for s in range(10)]
    free = ask("Score this.", seed=3, temperature=1.0, max_tokens=12)

    async def together() -> list[list[str]]:
        return list(await asyncio.gather(*(teacher.complete(r) for r in [*constrained, free])))

    batched = run(together())
    replies = [texts[0] for texts in batched[:-1]]
    assert [schema_problem(r.schema, text) for r, text in zip(constrained, replies, strict=True)] == [None] * 10
    assert schema_problem(constrained[0].schema, batched[-1][0]) is not None  # the free row was not masked
    alone = make_teacher(str(tiny_model_dir), batch_size=1)
    one_by_one = [run(alone.complete(r)) for r in constrained[:3]]
    assert one_by_one == batched[:3]
    assert teacher.compile_seconds > 0 and len(teacher._grammars) == 1  # one schema, compiled once
