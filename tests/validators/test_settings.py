"""One settings loader for every section of labrador.toml: the same type rules and the same messages for
[check], [documents], [generate], [teacher] and [bot]; unknown sections are errors; validators names no section
above it."""

from __future__ import annotations

from pathlib import Path

import pytest

from labrador.bot.config import load_settings as load_bot
from labrador.trainer.settings import load_settings as load_generate
from labrador.trainer.teachers.config import load_teacher
from labrador.validators.config import load_config
from labrador.validators.settings import ConfigError, known_sections

LOADERS = {
    "check": lambda p: load_config(p),
    "generate": lambda p: load_generate(p),
    "teacher": lambda p: load_teacher(p, env={}),
    "bot": lambda p: load_bot(p, env={}),
}
KEYS = {"check": ("max_depth", "allowed_hosts"), "generate": ("preview_samples", "out"),
        "teacher": ("max_concurrency", "spec"),
        "bot": ("retries", "work_dir")}
FLOOR = {"teacher": "at least 1", "check": "at least 1"}  # a limit of 0 (or no request in flight) cannot work


@pytest.mark.parametrize("section", sorted(LOADERS))
def test_unknown_keys_and_wrong_types_read_the_same_in_every_section(tmp_path: Path, section: str):
    path = tmp_path / "labrador.toml"
    number, text = KEYS[section]
    cases = [
        (f"{number}x = 1", f"[{section}] {number}x: unknown key; did you mean '{number}'?"),
        (f"{number} = true", f"[{section}] {number}: must be a whole number, got True"),
        (f'{number} = "3"', f"[{section}] {number}: must be a whole number, got '3'"),
        (f"{number} = -1", f"[{section}] {number}: must be {FLOOR.get(section, '0 or more')}, got -1"),
        (f"{text} = true", f"[{section}] {text}: must be"),
    ]
    for line, message in cases:
        path.write_text(f"[{section}]\n{line}\n")
        with pytest.raises(ConfigError) as exc:
            LOADERS[section](path)
        assert str(path) in str(exc.value) and message in str(exc.value), (line, str(exc.value))


def test_unknown_section_is_an_error_with_a_guess(tmp_path: Path):
    path = tmp_path / "labrador.toml"
    path.write_text("[generte]\nteacher = 'x'\n")
    with pytest.raises(ConfigError, match=r"unknown section \[generte\]; did you mean \[generate\]\?"):
        load_config(path)


def test_sections_of_packages_above_come_from_entry_points_not_from_validators():
    import labrador.validators.settings as s
    assert {"check", "documents", "generate", "bot"} <= known_sections()
    assert s.OWN_SECTIONS == ("check", "documents")
    source = Path(s.__file__).read_text()
    assert '"generate"' not in source and '"bot"' not in source


def test_paths_are_relative_to_the_file(tmp_path: Path):
    path = tmp_path / "sub" / "labrador.toml"
    path.parent.mkdir()
    path.write_text('[generate]\nout = "data"\n[bot]\nwork_dir = "state"\n[documents]\ncache_dir = "cache"\n')
    assert load_generate(path).out == str((path.parent / "data").resolve())
    assert load_bot(path, env={}).work_dir == str((path.parent / "state").resolve())
    assert load_config(path).cache_dir == str((path.parent / "cache").resolve())


def test_a_check_without_settings_keys_never_imports_the_validation_library(tmp_path: Path):
    """pydantic costs ~0.1 s to import: a contributor's `labrador check` only pays it when a section has keys."""
    import subprocess
    import sys

    (tmp_path / "taxonomy" / "knowledge").mkdir(parents=True)
    (tmp_path / "labrador.toml").write_text("[check]\n# only comments\n")
    code = ("import sys; from labrador.validators.cli import main; rc = main(['validate', '--taxonomy', 'taxonomy', "
            "'--config', 'labrador.toml', '--no-cache']); print(rc, 'pydantic' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.stdout.split()[-2:] == ["0", "False"], run.stderr
    (tmp_path / "labrador.toml").write_text("[check]\nmax_depth = 10\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.stdout.split()[-2:] == ["0", "True"], run.stderr  # keys to check: checked by pydantic


@pytest.mark.parametrize("section,line,words", [
    ("evaluate", "judge_retries = 100000000", "[evaluate] judge_retries: must be at most 100"),
    ("teacher", "endpoint_backoff_s = 1e308", "[teacher] endpoint_backoff_s: must be at most 2592000"),
    ("teacher", "request_timeout_s = 0.0", "[teacher] request_timeout_s: must be above 0"),
    ("teacher", "max_concurrency = 1000000000", "[teacher] max_concurrency: must be at most 100000"),
    ("bot", "retry_delay_s = 1e300", "[bot] retry_delay_s: must be at most"),
    ("nightly", "heal_steps = 4611686018427387904", "[nightly] heal_steps: must be at most"),
])
def test_huge_finite_counts_and_durations_are_refused_not_run(tmp_path: Path, section: str, line: str, words: str):
    """Issue 29.11: every count and duration a file sets has a ceiling; over it is a one-line error naming the key."""
    from labrador.trainer.evaluation.settings import load_evaluate
    from labrador.trainer.nightly.settings import load_nightly

    loaders = {**LOADERS, "evaluate": load_evaluate, "nightly": lambda p: load_nightly(p, quick=True)}
    path = tmp_path / "labrador.toml"
    path.write_text(f"[{section}]\n{line}\n")
    with pytest.raises(ConfigError) as exc:
        loaders[section](path)
    assert words in str(exc.value)


def test_a_file_with_several_mistakes_reports_every_one_a_line_each(tmp_path: Path):
    path = tmp_path / "labrador.toml"
    path.write_text('[bot]\nretrys = 2\nwork_dir = true\nheartbeat_s = -1\nmax_leaves = "many"\n')
    with pytest.raises(ConfigError) as exc:
        load_bot(path, env={})
    lines = str(exc.value).splitlines()
    assert len(lines) == 4, lines
    assert all(line.startswith(f"{path}: [bot] ") for line in lines)
    assert "retrys: unknown key; did you mean 'retries'?" in lines[0]  # a typo first: it may explain the rest
    assert {line.split(": ")[1] for line in lines[1:]} == {"[bot] work_dir", "[bot] heartbeat_s", "[bot] max_leaves"}


def test_every_section_key_declares_a_strict_type(tmp_path: Path):
    """No type is guessed from a default: a key typed with a bare ``int`` would take "3", so it is refused."""
    import dataclasses

    from labrador.validators.settings import _schema

    @dataclasses.dataclass(frozen=True)
    class Loose:
        retries: int = 2

    with pytest.raises(TypeError, match="declare retries with an alias"):
        _schema(Loose, frozenset())


def test_environment_values_are_read_as_text_against_the_declared_type():
    from labrador.bot.config import BotSettings
    from labrador.validators.settings import coerce

    assert coerce("env X:", BotSettings, "retries", "3", from_text=True) == 3
    assert coerce("env X:", BotSettings, "heartbeat_s", "2.5", from_text=True) == 2.5
    assert coerce("env X:", BotSettings, "app_id", "1234", from_text=True) == "1234"
    with pytest.raises(ConfigError, match="env X: retries: must be at most 100"):
        coerce("env X:", BotSettings, "retries", "1000", from_text=True)
