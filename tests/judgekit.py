"""A judge and a leaf for the judged-evaluation tests: a loopback OpenAI-compatible judge that scores an
answer by how much of the reference it reproduces, and a "reverse the words" leaf a tiny model learns."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from pathlib import Path

import yaml
from openai_server import FakeOpenAIServer

LEAF = "compositional_skills/reverse"
SEEDS = [("reverse: red cat sun", "sun cat red"), ("reverse: dog moon tree fish", "fish tree moon dog"),
         ("reverse: star rock", "rock star"), ("reverse: bird frog leaf", "leaf frog bird"),
         ("reverse: rain sand blue green", "green blue sand rain")]


class ExactnessJudge(FakeOpenAIServer):
    """A judge that scores an answer by how much of the reference it reproduces (1..10), as JSON; the
    reply for a request whose user text contains ``fail_marker`` is prose (fails the schema)."""

    fail_marker = "\x00never"

    def _reply(self, i: int, body: dict, last_user: str) -> str:
        if self.fail_marker in last_user:
            return "I think it is fine."
        ref = re.search(r"\[Reference\]\n(.*?)\n\[Answer\]", last_user, re.S)
        ans = re.search(r"\[Answer\]\n(.*?)\n\[End\]", last_user, re.S)
        ratio = difflib.SequenceMatcher(None, ref.group(1).strip(), ans.group(1).strip()).ratio() if ref and ans \
            else 0.0
        return json.dumps({"explanation": f"matches {ratio:.0%} of the reference", "score": 1 + round(9 * ratio)})


def write_leaf(folder: Path, seeds: list[tuple[str, str]], what: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qna.yaml").write_text(yaml.safe_dump(
        {"version": 3, "created_by": "tester", "task_description": what,
         "seed_examples": [{"question": q, "answer": a} for q, a in seeds]}, sort_keys=False))
    (folder / "attribution.txt").write_text("Title of work: test seeds\nLink to work: https://example.com\n"
                                            "License of the work: CC-BY-4.0\nCreator names: tester\n")




def git_committer(work: Path) -> Callable[[str], None]:
    """A git repository at ``work`` on ``main`` and a function committing everything in it."""
    import pygit2

    git = pygit2.init_repository(str(work), initial_head="main")
    sig = pygit2.Signature("t", "t@example.com")

    def commit(message: str) -> None:
        git.index.add_all()
        git.index.write()
        parents = [] if git.head_is_unborn else [git.head.target]
        git.create_commit("HEAD", sig, sig, message, git.index.write_tree(), parents)

    return commit


def night_toml(judge_url: str, base: Path, *, epochs: int, nightly: str = "", train: str = "") -> str:
    """A ``labrador.toml`` for a tiny judged night: ``judge_url`` as the teacher (quick profile), ``base`` as the
    start, the tiny model's training budget; ``nightly`` and ``train`` add lines to those tables. No seed is held
    out: these nights test the judged gate on every seed (a tiny model taught 60 epochs on four seeds forgets
    the fifth, which the held-out gate would rightly refuse first; tests/test_nightly_heldout.py pins that one).
    """
    return (f'[teacher]\nspec = "{judge_url}"\nprofile = "quick"\n[evaluate]\nholdout_seeds = 0\n'
            f'[nightly]\nbase_model = "{base}"\ninclude_seeds = true\ngate_require_improvement = false\n'
            f'{nightly}'
            "[nightly.train]\nmax_seq_len = 256\nmax_tokens_per_batch = 512\nheldout_fraction = 0.0\n"
            f"min_sample_tokens = 4\n{train}"
            f"[[nightly.train.phases]]\nepochs = {epochs}\neffective_batch = 5\nlr = 0.003\nwarmup_steps = 2\n")
