"""Hostile and broken files: each gets a clear finding in bounded time and memory, never an exception or a hang."""

from __future__ import annotations

import gc
import os
import random
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

from labrador.validators import Config, check_file
from labrador.validators.checks import REGISTRY
from labrador.validators.yamlload import load_yaml

ROOT = Path(__file__).resolve().parent.parent
SKILL = "compositional_skills/writing/freeform/hostile/qna.yaml"
KNOWLEDGE = "knowledge/science/hostile/qna.yaml"
HAIKU = ROOT / "taxonomy/compositional_skills/writing/freeform/haiku/qna.yaml"
PRINTING = ROOT / "taxonomy/knowledge/history/printing_press/qna.yaml"

MAX_SECONDS = 2.0
MAX_PEAK = 50 * 1024 * 1024


def bounded(data: bytes, path: str = SKILL, config: Config | None = None, memory: bool = False):
    """check_file under a stopwatch (and, for the big inputs, a second run under tracemalloc)."""
    start = time.perf_counter()
    report = check_file(path, data, config)
    elapsed = time.perf_counter() - start
    assert elapsed < MAX_SECONDS, f"took {elapsed:.2f}s"
    if memory:
        gc.collect()
        tracemalloc.start()
        try:
            check_file(path, data, config)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < MAX_PEAK, f"peak {peak / 1e6:.1f} MB"
    for f in report.findings:
        assert f.check in REGISTRY and f.severity in ("error", "warning")
    return report


def checks(report) -> set[str]:
    return {f.check for f in report.findings}


def one(report, check_id):
    hits = [f for f in report.findings if f.check == check_id]
    assert len(hits) == 1, report.findings
    return hits[0]


def billion_laughs(levels: int = 9, width: int = 9) -> bytes:
    lines = ["lol0: &lol0 \"lol\""]
    for i in range(1, levels + 1):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * width) + "]")
    lines.append(f"version: *lol{levels}")
    return ("\n".join(lines) + "\n").encode()


def test_billion_laughs():
    report = bounded(billion_laughs(), memory=True)
    f = one(report, "too-many-nodes")
    assert f.severity == "error" and "aliases" in f.message and f.line > 1
    assert report.data is None


def test_billion_laughs_with_mapping_aliases():
    text = "a: &a {x: 1, y: 2, z: 3, w: 4, v: 5, u: 6, t: 7, s: 8, r: 9}\n"
    for i, name in enumerate("bcdefghij"):
        prev = "abcdefghij"[i]
        text += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
    assert "too-many-nodes" in checks(bounded(text.encode(), memory=True))


def test_few_aliases_are_fine():
    text = HAIKU.read_text().replace("created_by: labrador-maintainers", "created_by: &who labrador-maintainers")
    text += "# trailing comment\n"
    assert bounded(text.encode()).findings == []


def test_file_over_the_size_limit():
    data = b"version: 3\n" + b"# padding padding padding\n" * (1024 * 1024 // 26 + 1)
    assert len(data) > 1024 * 1024
    report = bounded(data, memory=True)
    f = one(report, "file-too-large")
    assert f.severity == "error"
    assert f"{len(data):,}" in f.message and "262,144" in f.message
    assert report.findings == [f]


def test_size_limit_from_config():
    data = HAIKU.read_bytes()
    assert "file-too-large" in checks(bounded(data, config=Config(max_file_bytes=len(data) - 1)))
    assert bounded(data, config=Config(max_file_bytes=len(data))).findings == []


def _large_valid_knowledge(target: int) -> bytes:
    head, _, _ = PRINTING.read_text().partition("seed_examples:\n")
    doc = PRINTING.read_text()[PRINTING.read_text().index("document:\n"):]
    rng = random.Random(7)
    words = [f"w{n}" for n in range(5000)]
    out = head + "seed_examples:\n"
    i = 0
    while len(out) < target:
        context = " ".join(rng.choice(words) for _ in range(450))
        out += f"  - context: >-\n{textwrap.fill(context, 76, initial_indent=' ' * 6, subsequent_indent=' ' * 6)}\n"
        out += "    questions_and_answers:\n"
        for j in range(3):
            out += f"      - question: Question {i} {j}?\n        answer: Answer {i} {j}.\n"
        i += 1
    return (out + doc).encode()


def test_large_valid_file_under_the_limit_is_checked():
    data = _large_valid_knowledge(200 * 1024)
    assert 200 * 1024 <= len(data) < Config().max_file_bytes
    report = bounded(data, KNOWLEDGE, memory=True)
    assert report.findings == []
    assert len(report.data["seed_examples"]) > 50
    # and it really was checked: a problem deep inside is found at its line
    broken = data.replace(b"answer: Answer 40 2.", b"answer: yes")
    f = one(bounded(broken, KNOWLEDGE), "truthy")
    assert f.line == data[:data.index(b"answer: Answer 40 2.")].count(b"\n") + 1


def test_random_binary_bytes():
    data = random.Random(1).randbytes(64 * 1024) + b"\0"
    report = bounded(data, memory=True)
    f = one(report, "binary-file")
    assert f.severity == "error" and report.findings == [f]


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_without_nul_never_raise(seed):
    rng = random.Random(seed)
    data = bytes(rng.randrange(1, 256) for _ in range(4096))
    assert checks(bounded(data)) & {"encoding", "yaml-syntax", "binary-file", "not-a-mapping"}


def test_latin1_points_at_the_bad_byte():
    text = "version: 3\ncreated_by: tester\ntask_description: Écrire un café\n"
    f = one(bounded(text.encode("latin-1")), "encoding")
    assert (f.line, f.column) == (3, 19)
    assert "0xc9" in f.message and "UTF-8" in f.hint


def test_encoding_column_counts_characters_not_bytes():
    data = "task_description: ééé ".encode() + b"\xff\n"
    f = one(bounded(data), "encoding")
    assert (f.line, f.column) == (1, 23)


@pytest.mark.parametrize("codec,name", [("utf-16", "UTF-16"), ("utf-16-be", None), ("utf-32", "UTF-32")])
def test_utf16_and_utf32(codec, name):
    data = HAIKU.read_text().encode(codec)
    if codec == "utf-16-be":
        data = b"\xfe\xff" + data
    report = bounded(data)
    f = one(report, "encoding")
    assert (f.line, f.column) == (1, 1)
    assert (name or "UTF-16") in f.message and "UTF-8" in f.hint
    assert report.findings == [f]


def test_utf8_bom_is_accepted():
    assert bounded(b"\xef\xbb\xbf" + HAIKU.read_bytes()).findings == []


def test_deep_flow_nesting():
    data = b"[" * 100_000 + b"]" * 100_000 + b"\n"
    report = bounded(data, memory=True)
    f = one(report, "nesting-too-deep")
    assert (f.line, f.column) == (1, 65)
    assert f.severity == "error"


def test_deep_flow_mapping_nesting():
    data = b"a: " + b"{a: " * 50_000 + b"1" + b"}" * 50_000 + b"\n"
    assert one(bounded(data, memory=True), "nesting-too-deep").line == 1


def test_deep_block_mappings():
    data = "".join(" " * k + "a:\n" for k in range(300)).encode() + b" " * 300 + b"x\n"
    f = one(bounded(data, memory=True), "nesting-too-deep")
    assert (f.line, f.column) == (65, 65)  # the root mapping is level 1


def test_deep_block_sequences():
    data = b"- " * 100_000 + b"x\n"
    assert "nesting-too-deep" in checks(bounded(data, memory=True))


def test_depth_limit_from_config():
    data = b"a: [[[1]]]\n"
    assert "nesting-too-deep" in checks(bounded(data, config=Config(max_depth=3)))
    assert "nesting-too-deep" not in checks(bounded(data, config=Config(max_depth=4)))


def test_deep_nesting_in_a_subprocess_does_not_crash_the_interpreter():
    """Deep nesting used to overflow the C stack in the composer; prove a fresh process survives it."""
    code = textwrap.dedent("""
        import sys
        from labrador.validators import check_file
        P = "compositional_skills/writing/freeform/x/qna.yaml"
        for data in (b"[" * 100000 + b"]" * 100000, b"{a: " * 50000 + b"1" + b"}" * 50000,
                     b"- " * 120000 + b"x", "".join(" " * k + "a:\\n" for k in range(600)).encode()):
            r = check_file(P, data)
            print(sorted({f.check for f in r.findings}))
        print("survived")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "survived"
    assert all("nesting-too-deep" in line for line in lines[:-1])


def test_flat_list_of_100000_elements():
    data = b"[" + b"1," * 100_000 + b"1]\n"
    assert len(data) < Config().max_file_bytes
    f = one(bounded(data, memory=True), "too-many-nodes")
    assert f.severity == "error"


def test_flat_block_list_over_the_size_limit():
    data = b"- 1\n" * 100_000
    assert checks(bounded(data, memory=True)) == {"file-too-large"}
    cfg = Config(max_file_bytes=len(data))
    assert "too-many-nodes" in checks(bounded(data, config=cfg))


def test_huge_seed_list_gives_a_bounded_number_of_findings():
    data = HAIKU.read_bytes().split(b"seed_examples:")[0] + b"seed_examples: [" + b"{}," * 70_000 + b"{}]\n"
    report = bounded(data)
    assert 1 <= len(report.findings) <= 200
    assert checks(report) == {"schema"}


def test_node_limit_from_config():
    assert "too-many-nodes" in checks(bounded(HAIKU.read_bytes(), config=Config(max_nodes=10)))


@pytest.mark.parametrize("text", ["? {a: 1}\n: x\n", "{a: 1}: x\n", "? [a, b]\n: x\n", "version: 3\n[1]: x\n",
                                  "a: &m {b: 1}\n*m : x\n"])
def test_key_that_is_a_collection(text):
    f = one(bounded(text.encode()), "yaml-syntax")
    assert "key" in f.message and f.line >= 1 and f.column >= 1


def test_python_object_tag_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    calls: list[object] = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a) or 0)
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: calls.append(a))
    for payload in (f'!!python/object/apply:os.system ["touch {marker}"]\n',
                    f'version: !!python/object/apply:os.system ["touch {marker}"]\n',
                    f'a: !!python/object/new:subprocess.Popen [["touch", "{marker}"]]\n',
                    'a: !!python/name:os.system\n', 'a: !!python/module:os\n'):
        f = one(bounded(payload.encode()), "yaml-tag")
        assert "python/" in f.message and f.line == 1
    assert calls == [] and not marker.exists()


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x07", "\x1b", "\x7f", "\x80", "\x9f", "\ufffe"])
def test_control_characters(char):
    data = f"version: 3\ncreated_by: te{char}ster\n".encode()
    report = bounded(data)
    if char == "\x00":
        assert checks(report) == {"binary-file"}
        return
    f = one(report, "yaml-syntax")
    assert (f.line, f.column) == (2, 15)
    assert f"U+{ord(char):04X}" in f.message and "\n" not in f.message
    assert f.hint


@pytest.mark.parametrize("pattern", ["../../../../etc/passwd", "documents/../../secret.md", "/etc/passwd", "..",
                                     "**/../*.md"])
def test_document_pattern_with_dotdot_does_not_crash_check_file(pattern):
    text = PRINTING.read_text()
    text = text.replace("    - documents/knowledge/history/printing_press/spread_of_printing.md",
                        f"    - {pattern!r}".replace("'", '"'))
    report = bounded(text.encode(), KNOWLEDGE)
    assert report.errors == []
    assert pattern in report.data["document"]["patterns"]


def test_load_yaml_never_raises_on_unencodable_text():
    loaded = load_yaml("a: \ud800\n")
    assert loaded.fatal and [f.check for f in loaded.findings] == ["encoding"]


def test_repeated_loads_do_not_leak():
    data = b"a: [" + b"1, 2.5, true, 2001-01-01, " * 1000 + b"1]\n"
    check_file(SKILL, data)
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(3):
            check_file(SKILL, data)
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert retained < 256 * 1024, f"{retained / 1e6:.1f} MB retained across loads"


@pytest.mark.parametrize("text", [
    "a: *undefined\n",
    "a: &x [*x]\n",
    "a: 'unterminated\n",
    'a: "bad escape \\q"\n',
    "a: |\n  x\n b: 1\n",
    "%YAML 9.9\n---\na: 1\n",
    "%TAG !e! tag:evil.com,2000:\n---\na: !e!thing x\n",
    "a: b\n...\n---\nc: d\n",
    "\r\r\r",
    "a:\r  - 1\r  - yes\r",
    "? \n",
    ": \n",
    "- - - - -\n",
    "&a a: *a\n",
    "a: !!binary AAAA\n",
    "<<: {version: 3}\n",
    "\u2028\u2029\x85a: 1\n",
])
def test_odd_yaml_never_raises(text):
    report = bounded(text.encode())
    assert report.findings  # none of these is a valid leaf


def test_deep_nesting_same_finding_whatever_the_libyaml_limit():
    """libyaml >= 0.2.5 stops at 1,000 levels on its own; that stop is still `nesting-too-deep`."""
    data = "é: " + "[" * 5000 + "]" * 5000 + "\n"
    f = one(bounded(data.encode(), config=Config(max_depth=64)), "nesting-too-deep")
    assert (f.line, f.column) == (1, 67)  # the 64th '[' is level 65 under the root mapping
    above = one(bounded(data.encode(), config=Config(max_depth=4000)), "nesting-too-deep")
    assert above.severity == "error" and above.line == 1
