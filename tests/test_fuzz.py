"""Property tests: mutated real leaves never crash the checker; valid generated leaves pass the schema."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from labrador.validators import Config, check_file
from labrador.validators.checks import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
TAXONOMY = ROOT / "taxonomy"
LEAVES = [(p.relative_to(TAXONOMY).as_posix(), p.read_bytes()) for p in sorted(TAXONOMY.rglob("qna.yaml"))]

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

TOKENS = [b"&a ", b"*a", b"&a", b": ", b"- ", b"\t", b"\0", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf",
          b"'", b'"', b"{", b"}", b"[", b"]", b"#", b"!!", b"!!python/object:os.system ", b"---\n", b"...\n",
          b"? ", b"|", b">-", b"%", b"@", b"`", b"\r", b"\r\n", b"\x85", b"\xe2\x80\xa8", b"yes", b"~", b"<<: ",
          b"\x07", b"\x1b", b"\n", b"  ", b"version: 4\n", b"\\", b"!!timestamp ", b"!!bool ", b"!!int ",
          b"!!binary ", b"!!float ", b"!!map ", b"!!str ", b"!local ", b"? [a]: ", b"{a: 1}: ", b"*b", b"&b [*a, *a]"]



def _lines(data: bytes) -> list[str]:
    """Lines as editors, git and GitHub count them: every finding's line:column is in these terms."""
    return data.decode("utf-8", errors="replace").split("\n")


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    path, data = draw(st.sampled_from(LEAVES))
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["delete", "insert", "replace", "token", "del_line", "dup_line", "swap_lines",
                                   "indent", "dedent", "truncate"]))
        at = draw(st.integers(0, len(buf)))
        if op == "delete":
            del buf[at:at + draw(st.integers(1, 40))]
        elif op == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif op == "replace":
            n = draw(st.integers(1, 12))
            buf[at:at + n] = draw(st.binary(min_size=n, max_size=n))
        elif op == "token":
            buf[at:at] = draw(st.sampled_from(TOKENS))
        elif op == "truncate":
            del buf[at:]
        else:
            lines = bytes(buf).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if op == "del_line":
                del lines[i]
            elif op == "dup_line":
                lines.insert(i, lines[i])
            elif op == "swap_lines":
                lines[i], lines[j] = lines[j], lines[i]
            elif op == "indent":
                lines[i] = draw(st.sampled_from([b" ", b"  ", b"\t", b"    "])) + lines[i]
            else:
                lines[i] = lines[i].lstrip(b" ")
            buf = bytearray(b"\n".join(lines))
    return path, bytes(buf)


@FUZZ
@given(mutated())
def test_mutated_leaves_never_crash(case):
    path, data = case
    report = check_file(path, data)
    assert report.path == path
    lines = _lines(data)
    width = max(len(line) for line in lines)
    for f in report.findings:
        assert f.check in REGISTRY, f
        assert f.severity in ("error", "warning"), f
        assert f.severity == REGISTRY[f.check].severity, f
        assert f.message and "\n" not in f.message, f
        assert 0 <= f.line <= len(lines) + 1, (f, len(lines))
        assert 0 <= f.column <= width + 1, (f, width)
        assert f.path == path
    if data == dict(LEAVES)[path]:
        assert report.findings == []


@FUZZ
@given(mutated())
def test_mutated_leaves_with_tight_limits_never_crash(case):
    path, data = case
    report = check_file(path, data, Config(max_depth=3, max_nodes=50, max_file_bytes=4096, max_qna_words=5))
    assert all(f.check in REGISTRY for f in report.findings)


# ---------------------------------------------------------------- valid documents from strategies

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _distinct(texts: list[str]) -> bool:
    normed = [_norm(t) for t in texts]
    return all(normed) and len(set(normed)) == len(normed)


@st.composite
def skill_leaf(draw) -> dict:
    n = draw(st.integers(5, 8))
    questions = draw(st.lists(TEXT, min_size=n, max_size=n, unique=True))
    answers = draw(st.lists(TEXT, min_size=n, max_size=n))
    return {"version": draw(st.sampled_from([2, 3])), "created_by": draw(TEXT), "task_description": draw(TEXT),
            "seed_examples": [{"question": q, "answer": a} for q, a in zip(questions, answers, strict=True)]}


@st.composite
def knowledge_leaf(draw) -> dict:
    n = draw(st.integers(5, 6))
    contexts = draw(st.lists(TEXT, min_size=n, max_size=n, unique=True))
    questions = draw(st.lists(TEXT, min_size=3 * n, max_size=3 * n, unique=True))
    answers = draw(st.lists(TEXT, min_size=3 * n, max_size=3 * n))
    seeds = [{"context": c, "questions_and_answers": [{"question": questions[3 * i + j], "answer": answers[3 * i + j]}
                                                      for j in range(3)]} for i, c in enumerate(contexts)]
    return {"version": 3, "created_by": draw(TEXT), "domain": draw(TEXT), "document_outline": draw(TEXT),
            "seed_examples": seeds,
            "document": {"repo": "https://github.com/labrador-ai/labrador", "commit": "0" * 40,
                         "patterns": draw(st.lists(TEXT, min_size=1, max_size=3))}}


def _texts(leaf: dict) -> list[str]:
    if "domain" in leaf:
        return [s["context"] for s in leaf["seed_examples"]], [
            qa["question"] for s in leaf["seed_examples"] for qa in s["questions_and_answers"]]
    return [], [s["question"] for s in leaf["seed_examples"]]


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(skill_leaf().map(lambda d: ("compositional_skills/gen/leaf/qna.yaml", d)),
                 skill_leaf().map(lambda d: ("foundational_skills/gen/leaf/qna.yaml", d)),
                 knowledge_leaf().map(lambda d: ("knowledge/gen/leaf/qna.yaml", d))),
       st.booleans())
def test_generated_valid_leaves_pass(case, allow_unicode):
    path, leaf = case
    text = yaml.safe_dump(leaf, allow_unicode=allow_unicode, sort_keys=False)
    assume(yaml.safe_load(text) == leaf)  # PyYAML itself cannot round-trip a raw U+0085 with allow_unicode
    report = check_file(path, text.encode("utf-8"))
    assert [f for f in report.errors if f.check == "schema"] == []
    assert report.data == leaf
    contexts, questions = _texts(leaf)
    assume(_distinct(questions) and (not contexts or _distinct(contexts)))
    assert report.errors == [], (text, report.errors)
