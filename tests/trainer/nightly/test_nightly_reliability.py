"""The nightly job against unlucky histories and broken settings (issue 21, items 4-8): a non-finite or
unmeasured night is never promoted, a registry moved aside never reuses another run's steps, a force-push
(with the old commit pruned, or not) rebuilds from the newest promoted night still on main, a removed
contribution is never trained again, and every failure ends its row as failed with the reason."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pygit2
import pytest

pytest.importorskip("torch")
pytest.importorskip("accelerate")
from nightkit import HAIKU, commit_all, night, settings  # noqa: E402, F401

from labrador.trainer.nightly.gate import gate as _gate  # noqa: E402
from labrador.trainer.nightly.settings import NightlySettings  # noqa: E402

SENRYU = "compositional_skills/writing/freeform/senryu"


def add_leaf(work: Path, git: pygit2.Repository, leaf: str = SENRYU) -> str:
    shutil.copytree(work / "taxonomy" / HAIKU, work / "taxonomy" / leaf)
    q = work / "taxonomy" / leaf / "qna.yaml"
    q.write_text(q.read_text().replace("haiku", "senryu").replace("Haiku", "Senryu"))
    return commit_all(git, f"add {leaf}")


def leaves_in(path: str | Path) -> set[str]:
    return {json.loads(line)["leaf"] for line in Path(path).read_text().splitlines() if line.strip()}


def texts_in(path: str | Path) -> str:
    return Path(path).read_text()


# ---- item 4: the gate ---------------------------------------------------------------------------------------


def _metrics(**over):
    m = {"heldout_loss": {"tonight": 2.0, "tonight_parent": 3.0}, "forgetting": {}, "seed_loss": {"new": 2.5,
         "parent": 3.5}, "non_finite": [], "uniform_loss": 10.0}
    m.update(over)
    return m


def test_the_gate_never_promotes_a_broken_unmeasured_or_worse_than_guessing_model():
    s = NightlySettings(base_model="x")
    assert _gate(s, _metrics())[0]
    ok, why = _gate(s, _metrics(non_finite=["tonight"], heldout_loss={"tonight": None, "tonight_parent": 3.0}))
    assert not ok and "not finite" in why
    unmeasured = _metrics(heldout_loss={"tonight": None, "tonight_parent": None},
                          seed_loss={"new": None, "parent": None})
    ok, why = _gate(s, unmeasured)
    assert not ok and "be measured" in why and "not promoted" in why
    assert _gate(NightlySettings(base_model="x", gate_promote_unmeasured=True), unmeasured)[0]
    ok, why = _gate(s, _metrics(heldout_loss={"tonight": 11.0, "tonight_parent": 68.9}))
    assert not ok and "worse than guessing" in why
    ok, why = _gate(s, _metrics(heldout_loss={"tonight": None, "tonight_parent": None}))
    assert ok and "seed examples" in why  # no held-out sample: the seeds are the measure left


def test_the_gates_reason_carries_its_count_and_names_the_rule_that_decided():
    s = NightlySettings(base_model="x")
    ok, why = _gate(s, _metrics(heldout_loss={"tonight": 6.324, "tonight_parent": 6.819}, sizes={"tonight": 13}))
    assert ok and "tonight's held-out loss 6.819 -> 6.324 (n = 13), rule `gate_require_improvement`" in why
    ok, why = _gate(s, _metrics(heldout_loss={"tonight": 7.0, "tonight_parent": 6.819}, sizes={"tonight": 1}))
    assert not ok and "7.000 (n = 1) did not improve" in why and "`gate_require_improvement`" in why
    ok, why = _gate(NightlySettings(base_model="x", gate_require_improvement=False),
                    _metrics(heldout_loss={"tonight": 7.0, "tonight_parent": 6.819}))
    assert ok and "rule `gate_max_forgetting`" in why
    ok, why = _gate(s, _metrics(forgetting={"night-0001": 0.9}))
    assert not ok and "above gate_max_forgetting 0.25" in why


@pytest.mark.parametrize("key, value, message", [("lr", "inf", "finite"), ("lr", "nan", "finite"),
                                                  ("lr", "1e30", "at most"), ("effective_batch", "0", "at least 1")])
def test_non_finite_or_out_of_range_settings_stop_before_any_row(repo, tmp_path, recording, base_model,
                                                                 key, value, message, capsys):
    from labrador.validators.cli import main

    toml = repo / "labrador.toml"
    toml.write_text(settings(recording, base_model, **{key: value}))
    state = tmp_path / "state"
    assert main(["nightly", "--config", str(toml), "--state-dir", str(state), "--taxonomy",
                 str(repo / "taxonomy")]) == 2
    err = capsys.readouterr().err
    assert message in err and key in err and "Traceback" not in err
    assert not (state / "registry.db").exists()


def test_a_night_that_fails_after_starting_ends_its_row_as_failed(repo, tmp_path, recording, base_model):
    (repo / "labrador.toml").write_text(settings(recording, base_model, max_seq_len=8))
    record = night(repo, tmp_path / "state")
    assert record["status"] == "failed" and "no training sample left" in record["reason"]


# ---- item 5: a registry moved aside --------------------------------------------------------------------------


def test_a_registry_moved_aside_never_reuses_the_old_runs_steps(repo, tmp_path):
    state = tmp_path / "state"
    first = night(repo, state)
    assert first["status"] == "promoted"
    (state / "registry.db").rename(tmp_path / "old-registry.db")
    for f in state.glob("registry.db-*"):
        f.unlink()
    head = add_leaf(repo, pygit2.Repository(str(repo)))
    again = night(repo, state)
    assert again["id"] == "night-0001" and again["taxonomy_commit"] == head
    assert SENRYU in leaves_in(again["datasets"]["new"])  # generated afresh for the new commit
    stale = list((state / "runs" / ".stale").iterdir())
    assert len(stale) == 1 and (stale[0] / "steps" / "train.json").is_file()  # kept, not reused
    assert json.loads((Path(again["model"]).parent.parent.parent / "identity.json").read_text())["uid"] == \
        again["uid"]


# ---- items 6 and 7: history rewrites and removed leaves ----------------------------------------------------------


def _git(work: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(work), *args], check=True, capture_output=True)


@pytest.mark.parametrize("prune", [True, False])
def test_a_force_push_rebuilds_from_the_newest_promoted_night_still_on_main(repo, tmp_path, prune):
    state = tmp_path / "state"
    git = pygit2.Repository(str(repo))
    c1 = str(git.head.target)
    assert night(repo, state)["status"] == "promoted"
    add_leaf(repo, git)
    second = night(repo, state)
    assert second["status"] == "promoted" and SENRYU in leaves_in(second["datasets"]["new"])
    _git(repo, "reset", "--hard", c1)  # the senryu leaf is taken down by rewriting main
    (repo / "README.md").write_text("rewritten\n")
    _git(repo, "add", "README.md")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "rewrite")
    if prune:
        _git(repo, "reflog", "expire", "--expire=now", "--all")
        _git(repo, "gc", "-q", "--prune=now")
        assert pygit2.Repository(str(repo)).get(second["taxonomy_commit"]) is None
    third = night(repo, state)
    assert third["status"] == "promoted", third["reason"]
    assert third["parent"] == "night-0001" and third["model"] == night_model(state, "night-0001")
    assert "main was rewritten" in third["reason"] and ("is gone" if prune else "no longer on main") in third["reason"]
    add_leaf(repo, pygit2.Repository(str(repo)), "compositional_skills/writing/freeform/tanka")
    fourth = night(repo, state)  # the next night trains; nothing of the removed leaf comes back
    assert fourth["status"] in ("promoted", "rejected"), fourth["reason"]
    assert SENRYU not in leaves_in(fourth["datasets"]["mix"])
    assert "senryu" not in texts_in(fourth["datasets"]["mix"]).lower()


def night_model(state: Path, run_id: str) -> str:
    from labrador.trainer.nightly.registry import Registry

    return Registry(state / "registry.db").get(run_id)["model"]


def test_a_leaf_removed_by_a_normal_commit_is_never_replayed(repo, tmp_path):
    state = tmp_path / "state"
    git = pygit2.Repository(str(repo))
    assert night(repo, state)["status"] == "promoted"
    add_leaf(repo, git)
    assert night(repo, state)["status"] == "promoted"
    shutil.rmtree(repo / "taxonomy" / SENRYU)
    git.index.remove_all([f"taxonomy/{SENRYU}/*"])
    commit_all(git, "take the senryu leaf down")
    add_leaf(repo, git, "compositional_skills/writing/freeform/tanka")
    later = night(repo, state)
    assert SENRYU in later["leaves_removed"]
    assert SENRYU not in leaves_in(later["datasets"]["mix"])
    assert "senryu" not in texts_in(later["datasets"]["mix"]).lower()


def test_deleting_every_leaf_fails_the_night_naming_that_not_the_teacher(repo, tmp_path):
    """Issue 29.21: with no leaf left there is nothing to train on, and the reason says so."""
    state = tmp_path / "state"
    git = pygit2.Repository(str(repo))
    assert night(repo, state)["status"] == "promoted"
    shutil.rmtree(repo / "taxonomy")
    (repo / "taxonomy").mkdir()
    git.index.remove_all(["taxonomy/*"])
    commit_all(git, "take every leaf down")
    later = night(repo, state)
    assert later["status"] == "failed" and "every leaf was deleted" in later["reason"], later["reason"]
    assert "teacher" not in later["reason"]


# ---- item 8: the registry from anywhere, broken registries -------------------------------------------------------


def test_runs_work_from_another_folder_and_a_corrupt_registry_is_one_line(repo, tmp_path, monkeypatch):
    import os
    import sys

    labrador = str(Path(sys.executable).with_name("labrador"))
    monkeypatch.chdir(repo)
    state = Path("rel-state")  # relative: the registry must still hold absolute paths
    record = night(repo, state)
    assert Path(record["model"]).is_absolute() and Path(record["datasets"]["new"]).is_absolute()
    assert Path(record["report"]).is_absolute()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shown = subprocess.run([labrador, "runs", "show", record["id"], "--format", "json", "--state-dir",
                            str((repo / state).resolve())], capture_output=True, text=True, cwd=elsewhere)
    assert Path(json.loads(shown.stdout)["model"], "model.safetensors").is_file()
    import sqlite3

    db = repo / state / "registry.db"
    with sqlite3.connect(db) as c:
        c.execute("UPDATE runs SET record = 'not json' WHERE id = ?", (record["id"],))
    for args in (["runs"], ["runs", "show", record["id"]]):
        proc = subprocess.run([labrador, *args, "--state-dir", str(db.parent)], capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "200"})
        assert proc.returncode == 1 and "not a run record" in proc.stderr and "Traceback" not in proc.stderr
    for f in db.parent.glob("registry.db*"):
        f.unlink()
    db.write_bytes(b"this is not a database" * 100)
    proc = subprocess.run([labrador, "runs", "--state-dir", str(db.parent)], capture_output=True, text=True)
    assert proc.returncode == 1 and "cannot be read" in proc.stderr and "Traceback" not in proc.stderr


def _judged(**leaves):
    return {"judge": "j", "model": "m", "baseline": "b", "judge_error_rate": leaves.pop("rate", 0.0),
            "leaves": {k: {"model": 5.0, "baseline": 5.0 - d if d is not None else None, "delta": d, "questions": 3,
                           "verdict": "unchanged"} for k, d in leaves.items()}}


def test_the_judged_gate_names_regressed_leaves_low_means_and_a_failing_judge():
    s = NightlySettings(base_model="x", max_leaf_regression=1.0, min_mean_delta=0.5, max_judge_error_rate=0.1)
    ok, why = _gate(s, _metrics(), _judged(a=2.0, b=0.5), ["a", "b"])
    assert ok and "+1.25" in why
    ok, why = _gate(s, _metrics(), _judged(a=2.0, old=-1.5), ["a"])  # an earlier leaf forgotten
    assert not ok and "old (-1.50)" in why and "max_leaf_regression" in why
    ok, why = _gate(s, _metrics(), _judged(a=0.2, b=0.4), ["a", "b"])
    assert not ok and "+0.30 on average" in why and "min_mean_delta" in why
    ok, why = _gate(s, _metrics(), _judged(a=3.0, rate=0.25), ["a"])
    assert not ok and "judge failed on 25%" in why
    ok, why = _gate(s, _metrics(heldout_loss={"tonight": 11.0, "tonight_parent": 68.9}), _judged(a=3.0), ["a"])
    assert not ok and "worse than guessing" in why  # the loss gate speaks first
