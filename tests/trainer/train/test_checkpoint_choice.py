"""Checkpoint choice: a kept checkpoint becomes a loadable model folder with its own weights, the best-judged
candidate wins (a tie goes to the later one), and a night with ``choose_checkpoint`` promotes the chosen one
and reports every candidate's score. Real components: tiny Llamas, our trainer, a loopback judge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
from judgekit import LEAF, SEEDS, ExactnessJudge, git_committer, night_toml, write_leaf  # noqa: E402
from tinymodel import build_tiny_model  # noqa: E402
from trainkit import TASK_CORPUS, task_file, write_config  # noqa: E402

from labrador.trainer.nightly.choose import pick  # noqa: E402
from labrador.trainer.train.export import ExportError, export_checkpoint  # noqa: E402

LABRADOR = str(Path(sys.executable).with_name("labrador"))


class ContraryJudge(ExactnessJudge):
    """Scores the opposite way (an answer far from the reference scores high): the least-trained candidate
    wins, so the choice is seen to pick a checkpoint that is not the final model."""

    def _reply(self, i: int, body: dict, last_user: str) -> str:
        verdict = json.loads(super()._reply(i, body, last_user))
        return json.dumps({**verdict, "score": 11 - verdict["score"]})


def test_the_best_scored_candidate_wins_and_a_tie_goes_to_the_later():
    c = [{"name": "step 2", "score": 5.0}, {"name": "step 4", "score": 7.0}, {"name": "final", "score": 7.0}]
    assert pick(c)["name"] == "final"
    assert pick([{"name": "step 2", "score": 9.0}, {"name": "final", "score": 3.0}])["name"] == "step 2"
    assert pick([{"name": "step 2", "score": 4.0}, {"name": "final", "score": None}])["name"] == "step 2"
    assert pick([{"name": "step 2", "score": None}, {"name": "final", "score": None}])["name"] == "final"


@pytest.mark.parametrize("tie", [False, True])
def test_a_checkpoint_exports_to_a_loadable_folder_with_its_own_weights(tmp_path, tie):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from labrador.trainer.train.checkpoint import checkpoints
    from labrador.trainer.train.config import load_config
    from labrador.trainer.training import train

    model = build_tiny_model(tmp_path / "model", corpus=TASK_CORPUS, tie=tie)
    data = task_file(tmp_path / "a.jsonl", "reverse", 48)
    cfg = write_config(tmp_path, model, [{"name": "p", "data": str(data), "epochs": 2}], save_every_steps=2,
                       keep_checkpoints=5, save_dtype="bfloat16")
    train(load_config(cfg), progress=False)
    out = tmp_path / "out"
    (_, step, ckpt), *_ = checkpoints(out / "checkpoints")
    assert step == 2
    folder = export_checkpoint(ckpt, out / "p" / "final", tmp_path / "cand")
    loaded = AutoModelForCausalLM.from_pretrained(str(folder), dtype="auto")
    assert next(loaded.parameters()).dtype == torch.bfloat16  # the final folder's dtype
    saved = load_file(str(ckpt / "model.safetensors"))
    weights = loaded.state_dict()
    for name, tensor in saved.items():
        assert torch.equal(weights[name], tensor.to(torch.bfloat16)), name
    assert ("lm_head.weight" in saved) is not tie  # a tied head is saved once, as the embedding
    assert torch.equal(weights["lm_head.weight"], weights["model.embed_tokens.weight"]) is tie
    final = AutoModelForCausalLM.from_pretrained(str(out / "p" / "final"))
    assert not torch.equal(final.model.embed_tokens.weight, loaded.model.embed_tokens.weight)  # step 2, not final
    assert (folder / "tokenizer.json").is_file() and (folder / "chat_template.jinja").is_file()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert export_checkpoint(ckpt, out / "p" / "final", folder) == folder  # a second call does no work
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    del loaded, weights  # views of the file damaged below
    damaged = folder / "model.safetensors"
    damaged.write_bytes(damaged.read_bytes()[:100])  # issue 29.21: a damaged candidate is exported again
    assert export_checkpoint(ckpt, out / "p" / "final", folder) == folder
    again = AutoModelForCausalLM.from_pretrained(str(folder), dtype="auto").state_dict()
    assert all(torch.equal(again[name], tensor.to(torch.bfloat16)) for name, tensor in saved.items())
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(ExportError, match="no model.safetensors"):
        export_checkpoint(ckpt, out / "p" / "final", tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_a_night_promotes_the_chosen_checkpoint_and_reports_every_candidate(tmp_path):
    from labrador.trainer.nightly.registry import Registry

    work = tmp_path / "repo"
    write_leaf(work / "taxonomy" / LEAF, SEEDS, "Reverse the order of the words the user gives.")
    base = build_tiny_model(tmp_path / "base", corpus=TASK_CORPUS)
    commit = git_committer(work)
    with ContraryJudge() as judge:
        (work / "labrador.toml").write_text(night_toml(
            judge.base_url, base, epochs=30, nightly="choose_checkpoint = true\ngate_judged = false\n",
            train="save_every_steps = 10\nkeep_checkpoints = 5\n"))
        commit("a leaf")
        proc = subprocess.run([LABRADOR, "nightly", "--config", str(work / "labrador.toml"), "--state-dir",
                               str(tmp_path / "state"), "--taxonomy", str(work / "taxonomy")],
                              capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = Registry(tmp_path / "state" / "registry.db").runs()[0]
    choice = record["checkpoint_choice"]
    names = [c["name"] for c in choice["candidates"]]
    assert names == ["step 10", "step 20", "final"]
    assert all(c["score"] is not None and c["judge_error_rate"] == 0.0 for c in choice["candidates"])
    chosen = pick(choice["candidates"])
    assert choice["chosen"] == chosen["name"] != "final"  # the contrary judge prefers the least trained
    assert record["model"] == chosen["model"] and "/candidates/" in record["model"]
    assert record["branch_eval"]["model"] == record["model"]  # the judged evaluation saw the chosen one
    assert (Path(record["model"]) / "labrador-leaves.json").is_file()
    report = Path(record["report"]).read_text()
    assert "## Checkpoint choice" in report and f"{chosen['name']} (chosen)" in report
