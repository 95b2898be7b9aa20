"""The ``labrador validate`` command, run in-process: exit codes, output formats, config errors, leaf selection."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from labrador.validators.checks import REGISTRY
from labrador.validators.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOOD = ROOT / "taxonomy/compositional_skills/writing/freeform/haiku"
GOOD_KNOWLEDGE = ROOT / "taxonomy/knowledge/history/printing_press"
HAIKU = "compositional_skills/writing/freeform/haiku"
BAD = "compositional_skills/writing/freeform/bad_leaf"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding ./taxonomy with two good leaves and a labrador.toml, as the current directory."""
    shutil.copytree(GOOD, tmp_path / "taxonomy" / HAIKU)
    shutil.copytree(GOOD_KNOWLEDGE, tmp_path / "taxonomy/knowledge/history/printing_press")
    (tmp_path / "labrador.toml").write_text("[check]\nmax_qna_words = 250\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    for var in ("GITHUB_ACTIONS", "CI", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def add_bad_leaf(repo: Path) -> tuple[int, int]:
    """A leaf with an unquoted 'yes' answer; returns the truthy finding's line:column."""
    leaf = repo / "taxonomy" / BAD
    shutil.copytree(GOOD, leaf)
    text = (leaf / "qna.yaml").read_text()
    lines = text.split("\n")
    n = next(i for i, line in enumerate(lines) if line.strip() == "answer: |-")
    lines[n] = lines[n].replace("answer: |-", "answer: yes")
    del lines[n + 1:n + 4]
    (leaf / "qna.yaml").write_text("\n".join(lines))
    return n + 1, lines[n].index("yes") + 1


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


NO_NET = ("--no-documents", "--no-cache")


def test_clean_tree_exits_0(repo, capsys):
    code, out, err = run(capsys, *NO_NET)
    assert code == 0, out + err
    assert "2 leaf(s) checked: 0 error(s), 0 warning(s)" in out


def test_errors_exit_1(repo, capsys):
    add_bad_leaf(repo)
    code, out, _ = run(capsys, *NO_NET)
    assert code == 1
    assert "FAILED" in out


def test_warnings_alone_exit_0(repo, capsys):
    qna = repo / "taxonomy" / HAIKU / "qna.yaml"
    qna.write_text(qna.read_text().rstrip("\n"))
    code, out, _ = run(capsys, *NO_NET, "--format", "human")
    assert code == 0
    assert "warning [final-newline]" in out


def test_missing_taxonomy_exits_2(repo, capsys):
    code, out, err = run(capsys, *NO_NET, "--taxonomy", "does/not/exist")
    assert code == 2
    assert "does/not/exist" in err and out == ""


def test_missing_config_file_exits_2(repo, capsys):
    code, _, err = run(capsys, *NO_NET, "--config", "nope.toml")
    assert code == 2 and "nope.toml" in err


def test_unknown_config_key_exits_2_naming_file_and_key(repo, capsys):
    (repo / "labrador.toml").write_text("[check]\nmax_contxt_words = 10\n")
    code, out, err = run(capsys, *NO_NET)
    assert code == 2
    assert "labrador.toml" in err and "max_contxt_words" in err
    assert out == ""


@pytest.mark.parametrize("toml", ["[check\n", "[check]\nmax_qna_words = -1\n", "[check]\nmax_qna_words = 'x'\n",
                                  "[chekc]\nmax_qna_words = 1\n", "[check]\nlicenses = 'MIT'\n"])
def test_bad_config_values_exit_2(repo, capsys, toml):
    (repo / "labrador.toml").write_text(toml)
    code, _, err = run(capsys, *NO_NET)
    assert code == 2
    assert "labrador.toml" in err


def test_config_changes_the_verdict(repo, capsys):
    (repo / "labrador.toml").write_text("[check]\nmax_qna_words = 5\n")
    code, out, _ = run(capsys, *NO_NET, "--format", "json")
    assert code == 1
    assert {f["check"] for f in json.loads(out)["findings"]} == {"qna-too-long"}


def test_bad_format_is_a_usage_error(repo, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--format", "xml"])
    assert exc.value.code == 2


def test_json_format(repo, capsys):
    line, col = add_bad_leaf(repo)
    code, out, _ = run(capsys, *NO_NET, "--format", "json")
    assert code == 1
    body = json.loads(out)
    assert body["errors"] == 1 and body["warnings"] == 0
    assert body["taxonomy"] == "taxonomy"  # every path has one base: the repository
    assert sorted(body["leaves"]) == sorted([f"taxonomy/{HAIKU}/qna.yaml", f"taxonomy/{BAD}/qna.yaml",
                                             "taxonomy/knowledge/history/printing_press/qna.yaml"])
    (f,) = body["findings"]
    assert {"path", "line", "column", "check", "severity", "message", "hint"} <= set(f)
    assert (f["path"], f["line"], f["column"], f["check"], f["severity"]) == (
        f"taxonomy/{BAD}/qna.yaml", line, col, "truthy", "error")


def test_github_format(repo, capsys):
    line, col = add_bad_leaf(repo)
    (repo / "taxonomy" / BAD / "notes.md").write_text("x")
    code, out, err = run(capsys, *NO_NET, "--format", "github")
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert lines[1].startswith(
        f"::error file=taxonomy/{BAD}/qna.yaml,line={line},col={col},title=truthy::unquoted 'yes'")
    assert re.fullmatch(r"::error file=taxonomy/[\w/]+/qna\.yaml,line=\d+,col=\d+,title=[a-z-]+::[^\n]+", lines[1])
    assert "%0A" in lines[1]  # the hint travels on the annotation, newline-escaped
    assert lines[0].startswith(f"::error file=taxonomy/{BAD}/notes.md,title=leaf-files::")
    assert "error(s)" in err  # the summary goes to stderr, away from the annotations


def test_github_format_is_the_default_in_actions(repo, capsys, monkeypatch):
    add_bad_leaf(repo)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out, _ = run(capsys, *NO_NET)
    assert code == 1 and out.startswith("::error file=taxonomy/")


def test_human_format(repo, capsys):
    line, col = add_bad_leaf(repo)
    code, out, _ = run(capsys, *NO_NET, "--format", "human")
    assert code == 1
    lines = out.splitlines()
    i = next(i for i, s in enumerate(lines) if "[truthy]" in s)
    assert lines[i] == f"taxonomy/{BAD}/qna.yaml:{line}:{col}: error [truthy] unquoted 'yes' is read as the " \
                       "boolean True, not as text"
    assert lines[i + 1].strip() == 'hint: Quote it: "yes".'
    assert "\x1b[" not in out


def test_quiet_prints_findings_only(repo, capsys):
    add_bad_leaf(repo)
    code, out, _ = run(capsys, *NO_NET, "-q", "--format", "human")
    assert code == 1 and "leaf(s) checked" not in out and "[truthy]" in out


def test_list_checks(repo, capsys):
    code, out, _ = run(capsys, "--list-checks")
    assert code == 0
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}
    assert rows == {i: info.severity for i, info in REGISTRY.items()}
    assert {"yaml-syntax", "truthy", "schema", "version", "symlink", "attribution-license", "tabs"} <= set(rows)


def test_validate_path_checks_only_that_leaf(repo, capsys):
    add_bad_leaf(repo)
    code, out, _ = run(capsys, *NO_NET, "--format", "json", f"taxonomy/{HAIKU}")
    assert code == 0
    assert json.loads(out)["leaves"] == [f"taxonomy/{HAIKU}/qna.yaml"]
    code, out, _ = run(capsys, *NO_NET, "--format", "json", f"taxonomy/{BAD}/qna.yaml")
    assert code == 1
    assert json.loads(out)["leaves"] == [f"taxonomy/{BAD}/qna.yaml"]


def test_validate_path_outside_the_taxonomy_exits_2(repo, capsys, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    code, _, err = run(capsys, *NO_NET, str(elsewhere))
    assert code == 2 and "not inside the taxonomy" in err


def test_explicit_taxonomy_folder(repo, capsys, monkeypatch):
    add_bad_leaf(repo)
    monkeypatch.chdir(repo / "taxonomy")
    code, out, _ = run(capsys, *NO_NET, "--format", "json", "--taxonomy", ".")
    assert code == 1
    assert json.loads(out)["findings"][0]["path"] == f"{BAD}/qna.yaml"


def test_cache_run_gives_the_same_answer(repo, capsys):
    add_bad_leaf(repo)
    first = run(capsys, "--no-documents", "--format", "json")
    assert any((repo / "xdg-cache/labrador/check").glob("*.json"))
    second = run(capsys, "--no-documents", "--format", "json")
    assert first == second and first[0] == 1


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "validate" in capsys.readouterr().out


# ---------------------------------------------------------------- paths that name no leaf never "pass"


def test_a_path_that_names_no_leaf_exits_2(repo, capsys):
    code, out, err = run(capsys, *NO_NET, "taxonomy/knowledge/does_not_exist")
    assert code == 2 and "does_not_exist" in err and "passed" not in out
    (repo / "taxonomy/knowledge/empty_topic").mkdir()
    code, out, err = run(capsys, *NO_NET, "taxonomy/knowledge/empty_topic")
    assert code == 2 and "no leaf" in err


def test_a_folder_checks_every_leaf_below_it(repo, capsys):
    add_bad_leaf(repo)
    code, out, err = run(capsys, *NO_NET, "taxonomy/compositional_skills/writing/freeform")
    assert code == 1 and "2 leaf(s) checked" in out and "bad_leaf" in out


def test_dot_inside_a_leaf_means_that_leaf_and_the_taxonomy_is_found_upwards(repo, capsys, monkeypatch):
    add_bad_leaf(repo)
    monkeypatch.chdir(repo / "taxonomy" / BAD)
    code, out, err = run(capsys, *NO_NET, ".")
    assert code == 1 and "1 leaf(s) checked" in out and "truthy" in out
    monkeypatch.chdir(repo / "taxonomy/knowledge")
    code, out, err = run(capsys, *NO_NET)
    assert code == 1 and "3 leaf(s) checked" in out and "leaf-branch" not in out  # no false "Move it"


def test_the_verdict_cache_keeps_documents_on_and_off_apart(repo):
    """A pass cached by a run without document checks must not answer a run with them (and the reverse)."""
    from labrador.validators import Config, Finding
    from labrador.validators.cache import CheckCache
    from labrador.validators.tree import check_tree

    cache = CheckCache(repo / "cache.json")
    broken_docs = lambda report: [Finding("document-commit", "error", "no such commit", path=report.path)]  # noqa: E731
    assert all(r.ok for r in check_tree(repo / "taxonomy", Config(), cache=cache))
    with_docs = check_tree(repo / "taxonomy", Config(), cache=cache, extra=broken_docs)
    assert sum(1 for r in with_docs if not r.ok) == 2
    assert all(r.ok for r in check_tree(repo / "taxonomy", Config(), cache=cache))
    changed = check_tree(repo / "taxonomy", Config(), cache=cache, require_latest=True, extra=broken_docs)
    assert sum(1 for r in changed if not r.ok) == 2


def test_check_on_main_compares_with_origin_or_says_nothing_was_checked(repo, capsys):
    """A broken leaf committed on main used to get "no leaf changed against main — passed"."""
    import pygit2

    git = pygit2.init_repository(str(repo), initial_head="main")

    def commit_all(message):
        git.index.add_all()
        git.index.write()
        parents = [] if git.head_is_unborn else [git.head.target]
        sig = pygit2.Signature("t", "t@example.com")
        return git.create_commit("HEAD", sig, sig, message, git.index.write_tree(), parents)

    first = commit_all("good leaves")
    add_bad_leaf(repo)
    commit_all("a broken leaf, committed on main")
    code = main(["check", "--no-documents", "--no-cache"])
    out = capsys.readouterr().out
    assert code == 0 and "nothing was checked" in out and "HEAD is the same commit as main" in out
    assert "passed" not in out and "0 leaves checked: nothing to check" in out  # nothing passed: nothing ran
    git.references.create("refs/remotes/origin/main", first)
    code = main(["check", "--no-documents", "--no-cache"])
    out = capsys.readouterr().out
    assert code == 1 and "bad_leaf" in out and "truthy" in out


@pytest.mark.parametrize("argv, command", [
    (["validate", "--taxonomy", "/nonexistent/taxonomy"], "validate"),
    (["generate", "--taxonomy", "/nonexistent/taxonomy"], "generate"),
    (["runs", "--state-dir", "{tmp}", "show", "night-0099"], "runs"),
    (["models", "derive", "--from", "no-such-model", "--layers", "0"], "models derive"),
    (["bot", "worker", "--config", "/nonexistent/labrador.toml"], "bot"),
])
def test_every_command_fails_the_same_way(tmp_path, capsys, argv, command):
    """One error path: ``labrador COMMAND: error: …`` on one line, exit status 2, whichever package added it."""
    from labrador.trainer.nightly.registry import Registry

    Registry(tmp_path / "registry.db")  # `runs show`: a registry without that run
    rc = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"labrador {command}: error: "), err
