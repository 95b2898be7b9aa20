"""What the nightly tests share besides fixtures: the tree's paths, a labrador.toml for a tiny night, a commit,
and one night run through the command line (fixtures: ``tests/trainer/nightly/conftest.py``)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pygit2

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "sdg"
LABRADOR = str(Path(sys.executable).with_name("labrador"))
HAIKU = "compositional_skills/writing/freeform/haiku"
SIG = pygit2.Signature("t", "t@example.com")


def commit_all(repo: pygit2.Repository, message: str) -> str:
    repo.index.add_all()
    repo.index.write()
    parents = [] if repo.head_is_unborn else [repo.head.target]
    return str(repo.create_commit("HEAD", SIG, SIG, message, repo.index.write_tree(), parents))


PHASE_KEYS = ("epochs", "effective_batch", "lr", "warmup_steps", "max_steps")
TRAIN_KEYS = ("max_seq_len", "max_tokens_per_batch", "heldout_fraction", "keep_checkpoints", "save_every_steps")


def settings(recording: Path, base: Path, **extra) -> str:
    """labrador.toml: [teacher], [nightly], and the night's training as [nightly.train] (a training config)."""
    keys = {"base_model": f'"{base}"', "epochs": 2, "effective_batch": 8, "lr": 0.003, "max_seq_len": 1024,
            "max_tokens_per_batch": 2048, "heldout_fraction": 0.2, "gate_max_forgetting": 5.0, **extra}
    table = {"": {}, ".train": {}, ".train.phases": {}}
    for k, v in keys.items():
        table[".train.phases" if k in PHASE_KEYS else ".train" if k in TRAIN_KEYS else ""][k] = v
    text = f'[teacher]\nspec = "replay:{recording}"\nprofile = "full"\n'
    for suffix, values in table.items():
        head = f"[[nightly{suffix}]]" if suffix == ".train.phases" else f"[nightly{suffix}]"
        text += head + "\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
    return text


def night(work: Path, state: Path, *extra: str) -> dict:
    from labrador.validators.cli import main

    code = main(["nightly", "--config", str(work / "labrador.toml"), "--state-dir", str(state),
                 "--taxonomy", str(work / "taxonomy"), *extra])
    from labrador.trainer.nightly.registry import Registry

    record = Registry(state / "registry.db").runs()[0]
    assert code == (0 if record["status"] in ("promoted", "no-changes") else 1), record
    return record


def edit_and_add(work: Path, git: pygit2.Repository) -> tuple[str, str]:
    qna = work / "taxonomy" / HAIKU / "qna.yaml"
    qna.write_text(qna.read_text().replace("Write an original haiku", "Write a brand new haiku"))
    new = "compositional_skills/writing/freeform/senryu"
    shutil.copytree(work / "taxonomy" / HAIKU, work / "taxonomy" / new)
    q = work / "taxonomy" / new / "qna.yaml"
    q.write_text(q.read_text().replace("haiku", "senryu"))
    commit_all(git, "a changed leaf and a new one")
    return HAIKU, new
