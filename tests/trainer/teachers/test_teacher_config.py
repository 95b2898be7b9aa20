"""One teacher section: ``[teacher]`` read by one loader (flags > LABRADOR_TEACHER > [teacher] > defaults) and built
by one function, for generate, nightly, check --preview and the bot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labrador.bot.config import load_settings as load_bot
from labrador.trainer.settings import load_settings
from labrador.trainer.teachers.config import (
    HOW_TO_CONFIGURE,
    TeacherConfigError,
    TeacherSettings,
    build_teacher,
    load_teacher,
)
from labrador.validators.settings import ConfigError


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labrador.toml"
    path.write_text(text)
    return path


def test_flags_beat_the_environment_which_beats_the_file(tmp_path):
    path = toml(tmp_path, '[teacher]\nspec = "http://file:1/v1"\nmax_concurrency = 3\nmodel = "m"\n')
    assert load_teacher(path, env={}).spec == "http://file:1/v1"
    from_env = load_teacher(path, env={"LABRADOR_TEACHER": "http://env:2/v1"})
    assert (from_env.spec, from_env.max_concurrency, from_env.model) == ("http://env:2/v1", 3, "m")
    flagged = load_teacher(path, env={"LABRADOR_TEACHER": "http://env:2/v1"}, spec="http://flag:3/v1", model=None)
    assert (flagged.spec, flagged.model) == ("http://flag:3/v1", "m")  # an unset flag changes nothing


def test_the_removed_teacher_keys_of_other_sections_are_refused_as_unknown(tmp_path):
    path = toml(tmp_path, '[generate]\nteacher = "http://old:1/v1"\nout = "data"\n')
    with pytest.raises(ConfigError, match=r"\[generate\] teacher"):
        load_settings(path)
    with pytest.raises(ConfigError, match=r"\[bot\] teacher"):
        load_bot(toml(tmp_path, '[bot]\nteacher = "http://bot:1/v1"\n'), env={})
    assert load_teacher(path, env={}).spec is None  # never read as the teacher any more


def test_the_bot_gets_the_whole_teacher_section(tmp_path):
    path = toml(tmp_path, '[teacher]\nspec = "http://127.0.0.1:9/v1"\nmodel = "granite"\napi_key_env = "KEY"\n'
                          'max_concurrency = 4\n')
    teacher = load_bot(path, env={}).teacher
    assert (teacher.model, teacher.api_key_env, teacher.max_concurrency) == ("granite", "KEY", 4)


@pytest.mark.parametrize("text, words", [
    ('[teacher]\nspecs = "x"\n', ["[teacher] specs: unknown key; did you mean 'spec'?"]),
    ("[teacher]\nmax_concurrency = 0\n", ["max_concurrency", "at least 1"]),
    ('[teacher]\nprofile = "fast"\n', ["profile", "'auto', 'full' or 'quick'", "'fast'"]),
    ('[teacher]\njudges = "maybe"\n', ["judges", "'auto', 'on' or 'off'", "'maybe'"]),
    ('[teacher]\nmax_concurrency = "8"\n', ["max_concurrency: must be a whole number, got '8'"]),
])
def test_bad_teacher_settings_name_the_file_and_the_key(tmp_path, text, words):
    path = toml(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_teacher(path, env={})
    assert str(path) in str(exc.value)
    for w in words:
        assert w in str(exc.value)


def test_the_profile_follows_the_teacher_unless_set():
    assert TeacherSettings(spec="embedded").profile_name == "quick"  # a 135M CPU teacher
    assert TeacherSettings(spec="http://x/v1").profile_name == "full"
    assert TeacherSettings(spec="embedded", profile="full").profile_name == "full"


def test_judges_follow_the_profile_unless_set():
    from labrador.trainer.sdg.limits import Limits

    assert Limits.for_teacher(TeacherSettings(spec="embedded")).judges is False  # quick: a 135M judge is noise
    assert Limits.for_teacher(TeacherSettings(spec="http://x/v1")).judges is True
    assert Limits.for_teacher(TeacherSettings(spec="embedded", judges="on")).judges is True
    assert Limits.for_teacher(TeacherSettings(spec="http://x/v1", judges="off")).judges is False
    # judges off changes the output, so it is part of the leaf key; on (the default) leaves old keys as they were
    assert Limits.profile("full").key_params() == Limits().key_params()
    assert Limits.profile("full", judges=False).key_params()["judges"] is False


def test_one_builder_builds_every_backend_and_says_how_to_configure_none(tmp_path):
    with pytest.raises(TeacherConfigError, match="under \\[teacher\\]"):
        build_teacher(TeacherSettings())
    assert "LABRADOR_TEACHER" in HOW_TO_CONFIGURE
    recording = tmp_path / "r.json"
    recording.write_text(json.dumps({"answers": {}}))
    teacher = build_teacher(TeacherSettings(spec=f"replay:{recording}", max_concurrency=2))
    assert type(teacher).__name__ == "ReplayTeacher"
    http = build_teacher(TeacherSettings(spec="http://127.0.0.1:9/v1", model="m", max_concurrency=3))
    assert type(http).__name__ == "OpenAIHTTPTeacher" and http.name.endswith("m")
    with pytest.raises(ValueError, match="unrecognised teacher spec"):
        build_teacher(TeacherSettings(spec=str(tmp_path / "nowhere")))


def test_the_command_line_names_a_removed_key_in_one_line(tmp_path):
    import subprocess
    import sys

    toml(tmp_path, '[generate]\nteacher = "http://127.0.0.1:9/v1"\n')
    (tmp_path / "taxonomy").mkdir()
    labrador = str(Path(sys.executable).with_name("labrador"))
    proc = subprocess.run([labrador, "generate", "--taxonomy", "taxonomy", "--out", "o"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "[generate] teacher" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

def test_a_spec_with_a_space_is_one_teacher_and_a_pool_is_a_list(tmp_path):
    """Issue 29.5: a string is never split into endpoints (a path may hold a space); a list is a pool."""
    recording = tmp_path / "my recordings" / "r.json"
    recording.parent.mkdir()
    recording.write_text(json.dumps({"answers": {}}))
    teacher = build_teacher(TeacherSettings(spec=f"replay:{recording}"))
    assert type(teacher).__name__ == "ReplayTeacher"
    path = toml(tmp_path, '[teacher]\nspec = ["http://127.0.0.1:9/v1#m", "http://127.0.0.1:10/v1#m"]\n')
    settings = load_teacher(path, env={})
    assert settings.spec == ("http://127.0.0.1:9/v1#m", "http://127.0.0.1:10/v1#m")
    assert type(build_teacher(settings)).__name__ == "PooledTeacher" and settings.profile_name == "full"
    with pytest.raises(ValueError, match="several endpoints are a list"):  # two words are not two endpoints
        build_teacher(TeacherSettings(spec="http://127.0.0.1:9/v1#m http://127.0.0.1:10/v1#m"))


def test_one_table_names_the_backend_of_every_spec_form():
    from labrador.trainer.teachers.backends import EMBEDDED, FOLDER, HTTP, REPLAY, VLLM, backend_of, folder_of

    cases = {"http://h:1/v1": HTTP, " https://h/v1#m": HTTP, ("http://a/v1", "http://b/v1"): HTTP,
             "replay:r.jsonl": REPLAY, "vllm:/m": VLLM, "embedded": EMBEDDED,
             "embedded:smollm2-135m-instruct": EMBEDDED,
             "transformers:/m": FOLDER, "models/student": FOLDER, "/abs/model with space": FOLDER,
             "embedded-models/x": FOLDER}  # a folder whose name merely starts with the word
    assert {spec: backend_of(spec) for spec in cases} == cases
    assert folder_of("transformers:~/m") == Path("~/m").expanduser() and folder_of("http://h/v1") is None
    assert folder_of("models/student") == Path("models/student")
