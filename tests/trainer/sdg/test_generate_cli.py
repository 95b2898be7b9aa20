"""``labrador generate`` end to end with recorded teacher output (``--teacher replay:FILE``): no model, no network."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from labrador.trainer.sdg.cli import register
from labrador.trainer.settings import GenerateSettings, load_settings
from labrador.trainer.teachers.config import load_teacher, teacher_options
from labrador.validators.settings import ConfigError

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "sdg"


def run_cli(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="labrador")
    register(parser.add_subparsers())
    args = parser.parse_args(["generate", *map(str, argv)])
    return args.func(args)


@pytest.fixture(autouse=True)
def _no_env_teacher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABRADOR_TEACHER", raising=False)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One recording answering every pipeline's prompts (the three per-kind fixtures merged)."""
    rules: dict = {}
    for kind in ("freeform", "grounded", "knowledge"):
        rules.update(json.loads((FIXTURES / f"{kind}.json").read_text())["rules"])
    path = tmp_path_factory.mktemp("rec") / "all.json"
    path.write_text(json.dumps({"name": "replay-all", "rules": rules}))
    return path


@pytest.fixture
def skills_taxonomy(tmp_path: Path) -> Path:
    """The repository's skill leaves (knowledge needs its documents' git repository) outside any git repo."""
    tax = tmp_path / "taxonomy"
    for branch in ("compositional_skills", "foundational_skills"):
        shutil.copytree(ROOT / "taxonomy" / branch, tax / branch)
    return tax


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_whole_taxonomy_with_knowledge_documents(tmp_path: Path, recording: Path, capsys) -> None:
    out = tmp_path / "out"
    assert run_cli("--taxonomy", ROOT / "taxonomy", "--teacher", f"replay:{recording}", "--out", out, "-q") == 0
    stdout = capsys.readouterr().out
    assert "Synthetic data" in stdout and "knowledge/history/printing_press" in stdout
    assert "wrote phase1.jsonl" in stdout
    manifest = json.loads((out / "mix_manifest.json").read_text())
    assert set(manifest["leaf_status"].values()) == {"ok"} and len(manifest["leaf_status"]) == 11
    p1, p2 = manifest["phases"]["phase1"], manifest["phases"]["phase2"]
    assert {leaf.split("/")[0] for leaf in p1["leaves"]} == {"knowledge", "foundational_skills"}
    assert {leaf.split("/")[0] for leaf in p2["leaves"]} == {"compositional_skills"}
    assert p2["replayed"] == p1["own"] > 0  # every phase-1 row is replayed (caps of 30 not reached here)
    rows = jsonl(out / "phase2.jsonl")
    assert len(rows) == p2["rows"] and all(r["messages"][-1]["role"] == "assistant" for r in rows)
    assert sum(1 for _ in (out / "leaves").rglob("samples.jsonl")) == 11


def test_second_run_is_cached_and_byte_identical(tmp_path: Path, recording: Path, skills_taxonomy: Path,
                                                 capsys) -> None:
    out = tmp_path / "out"
    args = ("--taxonomy", skills_taxonomy, "--teacher", f"replay:{recording}", "--out", out, "--seed", "7", "-q")
    assert run_cli(*args) == 0
    first = (out / "phase2.jsonl").read_bytes()
    capsys.readouterr()
    assert run_cli(*args) == 0
    stdout = capsys.readouterr().out
    assert stdout.count("│ cached ") == 8 and (out / "phase2.jsonl").read_bytes() == first


def test_invalid_leaves_are_listed_and_skipped(tmp_path: Path, recording: Path, skills_taxonomy: Path,
                                               capsys) -> None:
    bad = skills_taxonomy / "compositional_skills" / "writing" / "broken"
    bad.mkdir()
    (bad / "qna.yaml").write_text("version: 3\ncreated_by: someone\nseed_examples: []\n")
    (bad / "attribution.txt").write_text("x")
    out = tmp_path / "out"
    assert run_cli("--taxonomy", skills_taxonomy, "--teacher", f"replay:{recording}", "--out", out) == 0
    captured = capsys.readouterr()
    assert "skipped compositional_skills/writing/broken/qna.yaml: invalid" in captured.err
    assert "[8/8]" in captured.err  # one line per finished leaf when not on a terminal
    manifest = json.loads((out / "mix_manifest.json").read_text())
    assert manifest["leaf_status"]["compositional_skills/writing/broken/qna.yaml"] == "skipped"
    assert "compositional_skills/writing/broken" not in manifest["available"]


def test_named_leaves_and_branches(tmp_path: Path, recording: Path, skills_taxonomy: Path) -> None:
    out = tmp_path / "out"
    haiku = skills_taxonomy / "compositional_skills" / "writing" / "freeform" / "haiku" / "qna.yaml"
    assert run_cli("--taxonomy", skills_taxonomy, "--teacher", f"replay:{recording}", "--out", out, "-q",
                   "foundational_skills/reasoning", haiku) == 0
    manifest = json.loads((out / "mix_manifest.json").read_text())
    assert sorted(manifest["available"]) == ["compositional_skills/writing/freeform/haiku",
                                             "foundational_skills/reasoning/arithmetic/unit_conversion",
                                             "foundational_skills/reasoning/logic/syllogisms"]
    assert run_cli("--taxonomy", skills_taxonomy, "--teacher", f"replay:{recording}", "--out", out,
                   "no/such/leaf") == 2


def test_settings_come_from_labrador_toml_and_flags_override(tmp_path: Path, recording: Path,
                                                             skills_taxonomy: Path) -> None:
    recipe = tmp_path / "one_phase.yaml"
    recipe.write_text("version: 1\nphases:\n  - name: all\n    groups: [{name: all, include: ['**']}]\n")
    (tmp_path / "labrador.toml").write_text(
        f'[teacher]\nspec = "replay:{recording}"\nmax_concurrency = 2\n'
        '[generate]\nout = "data"\nrecipe = "one_phase.yaml"\nseed = 3\n')
    assert run_cli("--taxonomy", skills_taxonomy, "-q", "--seed", "4") == 0
    manifest = json.loads((tmp_path / "data" / "mix_manifest.json").read_text())
    assert list(manifest["phases"]) == ["all"] and manifest["seed"] == 4
    assert (tmp_path / "data" / "all.jsonl").is_file()


def test_no_teacher_anywhere_is_one_clear_line(tmp_path: Path, skills_taxonomy: Path, capsys) -> None:
    assert run_cli("--taxonomy", skills_taxonomy, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "[teacher]" in err and "labrador.toml" in err and "LABRADOR_TEACHER" in err and "--teacher" in err


def test_failed_leaf_exits_1_and_is_reported(tmp_path: Path, skills_taxonomy: Path, capsys) -> None:
    partial = tmp_path / "freeform_only.json"
    partial.write_text((FIXTURES / "freeform.json").read_text())  # nothing recorded for grounded prompts
    out = tmp_path / "out"
    assert run_cli("--taxonomy", skills_taxonomy, "--teacher", f"replay:{partial}", "--out", out, "-q") == 1
    captured = capsys.readouterr()
    assert "failed compositional_skills/grounded/" in captured.err and "no recording" in captured.err
    manifest = json.loads((out / "mix_manifest.json").read_text())
    assert manifest["leaf_status"]["compositional_skills/writing/freeform/haiku/qna.yaml"] == "ok"
    assert "compositional_skills/grounded/extraction/table_to_bullets" not in manifest["available"]


@pytest.mark.parametrize("extra, message", [
    (("--recipe", "/nonexistent/recipe.yaml"), "cannot read recipe"),
    (("--teacher", "replay:/nonexistent.json"), "does not exist"),
    (("--teacher", "ftp://example"), "unrecognised teacher spec"),
    (("--max-concurrency", "0"), "at least 1"),
])
def test_usage_errors_exit_2(tmp_path: Path, recording: Path, skills_taxonomy: Path, capsys, extra, message) -> None:
    args = ["--taxonomy", skills_taxonomy, "--teacher", f"replay:{recording}", "--out", tmp_path / "o", *extra]
    assert run_cli(*args) == 2
    assert message in capsys.readouterr().err


def test_settings_file_validation_and_options(tmp_path: Path) -> None:
    path = tmp_path / "labrador.toml"
    path.write_text('[teacher]\nspec = "http://127.0.0.1:1/v1"\ntokenizer = "tok"\nmax_concurrency = 3\n'
                    '[generate]\nout = "data"\n')
    s = load_teacher(path, env={})
    assert s.tokenizer == str(tmp_path / "tok") and s.max_concurrency == 3
    assert load_settings(path).out == str(tmp_path / "data")
    assert load_teacher(path, env={"LABRADOR_TEACHER": "http://other/v1"}).spec == "http://other/v1"
    assert teacher_options("http://x/v1", s.merged(model="m", api_key_env="KEY")) == {
        "max_concurrency": 3, "model": "m", "api_key_env": "KEY", "tokenizer_path": str(tmp_path / "tok"),
        "timeout_s": 120.0}
    assert teacher_options("vllm:/models/x", s) == {"batch_size": 3}
    assert GenerateSettings().merged(seed=None, out="o").out == "o"
    path.write_text('[generate]\nout = "x"\ntemperature = 1\n')
    with pytest.raises(ConfigError, match=r"\[generate\] temperature: unknown key"):
        load_settings(path)
    path.write_text("[teacher]\nmax_concurrency = true\n")
    with pytest.raises(ConfigError, match=r"\[teacher\] max_concurrency: must be a whole number, got True"):
        load_teacher(path, env={})


def test_missing_replay_dataset_fails_before_generating(tmp_path: Path, recording: Path, skills_taxonomy: Path,
                                                        capsys) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("version: 1\nphases:\n  - name: p\n    groups: [{name: all, include: ['**']}]\n"
                      "    replay: [{dataset: old.jsonl, fraction: 0.5}]\n")
    out = tmp_path / "out"
    assert run_cli("--taxonomy", skills_taxonomy, "--teacher", f"replay:{recording}", "--out", out,
                   "--recipe", recipe) == 2
    assert "old.jsonl does not exist" in capsys.readouterr().err and not out.exists()


def test_progress_display_aggregates_stages_across_leaves() -> None:
    from io import StringIO

    from rich.console import Console

    from labrador.trainer.sdg import ProgressEvent
    from labrador.trainer.sdg.progress import ProgressDisplay

    console = Console(file=StringIO(), force_terminal=True, width=100)
    with ProgressDisplay(console, leaves=2, live=True) as display:
        for leaf in ("a/qna.yaml", "b/qna.yaml"):
            display.event(ProgressEvent(leaf, "3:judge:freeform_question_judge", 3, 7, "start", 0, 10))
            display.event(ProgressEvent(leaf, "3:judge:freeform_question_judge", 3, 7, "advance", 4, 10))
        display.event(ProgressEvent("a/qna.yaml", "3:judge:freeform_question_judge", 3, 7, "end", 8, 8))
        progress = display._progress
        assert progress is not None
        tasks = {t.description: t for t in progress.tasks}
        assert set(tasks) == {"leaves", "judge:freeform_question_judge"}
        judge = tasks["judge:freeform_question_judge"]
        assert (judge.completed, judge.total) == (14, 20)  # a: done (10 of 10), b: 4 of 10


def test_each_leaf_is_checked_once(tmp_path: Path, recording: Path, skills_taxonomy: Path, monkeypatch) -> None:
    """The checker's report goes down to the generator: a leaf is not parsed and checked a second time."""
    from labrador.validators import leaf

    calls: list[str] = []
    real = leaf.check_file

    def counting(relpath, data, config=None, **kw):
        calls.append(relpath)
        return real(relpath, data, config, **kw)

    for module in ("labrador.validators.leaf", "labrador.validators.folder", "labrador.trainer.sdg.leaf"):
        monkeypatch.setattr(f"{module}.check_file", counting)
    assert run_cli("--taxonomy", skills_taxonomy, "--teacher", f"replay:{recording}", "--out", tmp_path / "o",
                   "--no-mix") == 0
    assert calls and len(calls) == len(set(calls))
