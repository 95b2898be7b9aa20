"""The nightly tests' fixtures: a recorded teacher for every prompt, a tiny base model, and a taxonomy repository
on main with its [nightly] settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pygit2
import pytest
from nightkit import FIXTURES, ROOT, commit_all, settings


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    rules: dict = {}
    for kind in ("freeform", "grounded"):
        rules.update(json.loads((FIXTURES / f"{kind}.json").read_text())["rules"])
    rules["answer_judge"] = ['{"explanation": "Partly right.", "score": 5}']  # the judged evaluation: no change
    path = tmp_path_factory.mktemp("rec") / "all.json"
    path.write_text(json.dumps({"name": "replay-all", "rules": rules}))
    return path


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from tinymodel import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("base"), hidden=48, layers=1, heads=2)


@pytest.fixture
def repo(tmp_path, recording, base_model):
    """A taxonomy repository (the starting tree's skill leaves) on main, with [nightly] settings."""
    work = tmp_path / "repo"
    for branch in ("compositional_skills", "foundational_skills"):
        shutil.copytree(ROOT / "taxonomy" / branch, work / "taxonomy" / branch)
    (work / "labrador.toml").write_text(settings(recording, base_model))
    git = pygit2.init_repository(str(work), initial_head="main")
    commit_all(git, "the starting tree")
    return work
