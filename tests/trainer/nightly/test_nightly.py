"""`labrador nightly` end to end in a temporary git repository, with a tiny local model and a recorded teacher:
nights with changes, replay and lineage, a night with none, a rejected night that keeps the previous parent,
and a night killed at several points that resumes to the same entry and weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pygit2
import pytest

pytest.importorskip("torch")
pytest.importorskip("accelerate")

from nightkit import HAIKU, LABRADOR, commit_all, edit_and_add, night, settings  # noqa: E402


def test_nights_with_changes_replay_lineage_and_a_night_without(repo, tmp_path, capsys):
    state = tmp_path / "state"
    first = night(repo, state)
    assert first["status"] == "promoted" and first["parent"] is None and first["id"] == "night-0001"
    assert len(first["leaves_regenerated"]) == 8 and first["leaves_removed"] == []
    assert first["samples"]["night"]["new"] > 0 and first["samples"]["night"]["replayed"] == 0
    assert Path(first["model"], "model.safetensors").is_file() and Path(first["report"]).is_file()
    assert first["metrics"]["heldout_loss"]["tonight"] < first["metrics"]["heldout_loss"]["tonight_parent"]
    judged = first["branch_eval"]  # night 1 against the base model, which saw no leaf: every leaf is new
    assert set(judged["leaves"]) == set(first["leaves_regenerated"]) and judged["judge_error_rate"] == 0.0
    assert all(v["verdict"] == "new" and v["delta"] == 0.0 for v in judged["leaves"].values())
    assert json.loads(Path(first["model"], "labrador-leaves.json").read_text())["leaves"] == \
        sorted(first["leaf_hashes"])

    git = pygit2.Repository(str(repo))
    changed, added = edit_and_add(repo, git)
    second = night(repo, state)
    assert second["status"] == "promoted", second["reason"]
    assert second["leaves_regenerated"] == sorted([changed, added])  # exactly those two
    assert second["parent"] == "night-0001" and second["start_model"] == first["model"]
    assert second["samples"]["night"]["replayed"] > 0  # night 1's data is replayed
    mix = [json.loads(x) for x in Path(second["datasets"]["mix"]).read_text().splitlines()]
    assert {r["leaf"] for r in mix} - {changed, added}  # earlier leaves are in tonight's mix
    assert changed not in {r["leaf"] for r in mix if r not in
                           [json.loads(x) for x in Path(second["datasets"]["new"]).read_text().splitlines()]}
    assert set(second["metrics"]["forgetting"]) == {"night-0001"}
    judged = second["branch_eval"]["leaves"]  # the changed leaves, and the earlier ones as a forgetting probe
    assert judged[changed]["verdict"] == "unchanged" and judged[added]["verdict"] == "new"
    assert set(judged) == set(first["leaf_hashes"]) | {added}
    rows = [json.loads(x) for x in (Path(second["report"]).parent / "branch_eval.jsonl").read_text().splitlines()]
    assert {r["leaf"] for r in rows} == set(judged) and all(r["model"]["score"] == 5 for r in rows)
    report = Path(second["report"]).read_text()
    assert "night-0001" in report and "forgetting" in report.lower() and (Path(second["report"]).parent /
                                                                         "forgetting.png").is_file()
    assert "Judged per-leaf evaluation" in report and (Path(second["report"]).parent / "branch_eval.png").is_file()

    from huggingface_hub import ModelCard

    card = ModelCard.load(Path(second["model"]) / "README.md")  # the promoted model says what it is
    assert second["card"] == str(Path(second["model"]) / "README.md")
    assert card.data.library_name == "transformers" and {"labrador", "lab", "synthetic-data"} <= set(card.data.tags)
    assert card.data.license == "other" and card.data.base_model == Path(first["start_model"]).name
    lineage = card.text.split("## Lineage")[1].split("##")[0]
    assert "| night-0001 |" in lineage and "| night-0002 |" in lineage and f"`{added}`" in lineage
    assert "lr 0.003, 2 epoch(s)" in card.text and str(tmp_path) not in str(card)
    eval_leaves = {r.dataset_name for r in card.data.eval_results or []}
    assert eval_leaves <= set(second["leaf_hashes"]) | {"everyday"}

    third = night(repo, state)
    assert third["status"] == "no-changes" and not (state / "runs" / third["id"]).exists()

    from labrador.validators.cli import main

    capsys.readouterr()
    assert main(["runs", "--state-dir", str(state), "--format", "json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in runs] == ["night-0003", "night-0002", "night-0001"]
    assert main(["runs", "show", "night-0002", "--format", "json", "--state-dir", str(state)]) == 0
    shown = json.loads(capsys.readouterr().out)
    for key in ("id", "status", "taxonomy_commit", "parent", "leaves_regenerated", "leaves_removed", "samples",
                "metrics", "model", "report", "reason"):
        assert key in shown


def test_a_rejected_night_keeps_the_previous_model_as_parent(repo, tmp_path, recording, base_model):
    state = tmp_path / "state"
    assert night(repo, state)["status"] == "promoted"
    git = pygit2.Repository(str(repo))
    edit_and_add(repo, git)
    wrecking = settings(recording, base_model, lr=1.0, warmup_steps=0, epochs=6, gate_max_forgetting=0.0)
    (repo / "labrador.toml").write_text(wrecking)
    rejected = night(repo, state)  # a learning rate that wrecks the model (no warmup, many epochs): refused
    assert rejected["status"] == "rejected" and ("forgetting" in rejected["reason"] or "improve" in rejected["reason"])
    (repo / "labrador.toml").write_text(settings(recording, base_model))
    again = night(repo, state)
    assert again["parent"] == "night-0001"  # not the rejected night
    assert len(again["leaves_regenerated"]) == 2  # the rejected night's changes are still to be learnt


def test_a_judge_that_fails_too_often_rejects_the_night_and_says_why(repo, tmp_path, recording, base_model):
    rules = json.loads(recording.read_text())
    rules["rules"]["answer_judge"] = ["I would rate it fairly well."]  # prose: fails the schema, retries too
    broken = tmp_path / "broken-judge.json"
    broken.write_text(json.dumps(rules))
    (repo / "labrador.toml").write_text(settings(broken, base_model))
    record = night(repo, tmp_path / "state")
    assert record["status"] == "rejected" and "judge failed on 100%" in record["reason"], record["reason"]
    assert record["branch_eval"]["judge_error_rate"] == 1.0
    assert all(v["model"] is None and v["verdict"] == "new" for v in record["branch_eval"]["leaves"].values())


def test_a_distilling_night_logs_the_kd_term_every_step_and_reports_it(repo, tmp_path, recording, base_model):
    text = settings(recording, base_model) + f'[nightly.train.distill]\nteacher_model = "{base_model}"\nlambda = 0.5\n'
    (repo / "labrador.toml").write_text(text)
    record = night(repo, tmp_path / "state")
    run = Path(record["report"]).parent
    rows = [json.loads(x) for x in (run / "train" / "metrics.jsonl").read_text().splitlines()]
    assert rows and all("loss_pred" in r and "loss_ce" in r for r in rows)
    assert all(abs(r["loss"] - (0.5 * r["loss_ce"] + 0.5 * r["loss_pred"])) < 1e-4 for r in rows)
    assert record["distill"] == {"teacher": str(base_model), "lambda": 0.5, "attention": 0.0}
    report = Path(record["report"]).read_text()
    assert "## Training" in report and "online distillation" in report and "KD loss (KL to the teacher)" in report


def test_a_lora_night_promotes_a_merged_model_whose_card_says_so(repo, tmp_path, recording, base_model):
    pytest.importorskip("peft")
    lora = '[nightly.train.lora]\nr = 4\nalpha = 8.0\ntarget_modules = ["q_proj", "v_proj", "down_proj", "lm_head"]\n'
    (repo / "labrador.toml").write_text(settings(recording, base_model) + lora)
    record = night(repo, tmp_path / "state")
    assert record["status"] == "promoted", record["reason"]
    final = Path(record["model"])
    assert (final / "config.json").is_file() and not (final / "adapter_config.json").exists()
    from huggingface_hub import ModelCard

    card = ModelCard.load(final / "README.md")
    assert "lora" in card.data.tags and "LoRA: r = 4, alpha = 8.0, merged into the weights" in card.text
    (repo / "labrador.toml").write_text(settings(recording, base_model) + lora + "merge = false\n")
    from labrador.validators.cli import main

    assert main(["nightly", "--config", str(repo / "labrador.toml"), "--state-dir", str(tmp_path / "s2"),
                 "--taxonomy", str(repo / "taxonomy")]) == 2


def test_the_quick_night_distils_the_embedded_teacher():
    from labrador.trainer.models.store import models_root
    from labrador.trainer.nightly.night import embedded_distill_teacher
    from labrador.trainer.nightly.settings import load_nightly

    s = load_nightly(None, quick=True)
    config = s.train_config("model", Path("out"), Path("data"))
    assert config.distill is not None and config.distill.teacher_model == "embedded" and config.distill.lam == 0.5
    assert s.heal_steps == 0 and s.base_model == "smollm2-135m-instruct"  # the embedded model itself, no cut
    if not (models_root() / "smollm2-135m-instruct" / "config.json").is_file():
        pytest.skip("the embedded model is not pulled (CI pulls it)")
    resolved = embedded_distill_teacher(config)
    assert resolved.distill.teacher_model == str(models_root() / "smollm2-135m-instruct")


def test_a_broken_main_stops_before_any_model_loads(repo, tmp_path):
    (repo / "taxonomy" / HAIKU / "qna.yaml").write_text("version: 3\nanswer: yes\n")
    commit_all(pygit2.Repository(str(repo)), "broken")
    record = night(repo, tmp_path / "state")
    assert record["status"] == "failed" and "does not pass the checker" in record["reason"]
    assert not (tmp_path / "state" / "runs" / record["id"] / "steps" / "generate.json").exists()


def test_a_killed_night_resumes_to_the_same_entry_and_weights(repo, tmp_path):
    from labrador.trainer.nightly.registry import Registry

    def cmd_for(state: Path) -> list[str]:
        return [LABRADOR, "nightly", "--config", str(repo / "labrador.toml"), "--state-dir", str(state),
                "--taxonomy", str(repo / "taxonomy")]

    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same float reductions in every run compared
    assert subprocess.run(cmd_for(tmp_path / "ref"), capture_output=True, env=one_thread).returncode == 0
    ref = Registry(tmp_path / "ref" / "registry.db").runs()[0]
    state = tmp_path / "killed"
    cmd = cmd_for(state)
    run_dir = state / "runs" / "night-0001"
    kills = 0
    metrics = run_dir / "train" / "metrics.jsonl"
    for ready in (lambda: (run_dir / "steps" / "generate.json").is_file(),  # after generation
                  lambda: metrics.is_file() and metrics.stat().st_size > 0):  # during training
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=one_thread)
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if ready():
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.005)
        proc.wait()
    assert kills >= 1  # the second kill may find the night already done on a fast machine: then it resumes nothing
    done = subprocess.run(cmd, capture_output=True, text=True, env=one_thread)
    assert done.returncode == 0, done.stderr[-2000:]
    from safetensors.torch import load_file

    got = Registry(state / "registry.db").runs()
    assert [r["id"] for r in got] == ["night-0001"]  # resumed under the same id, never recorded twice
    got = got[0]
    for key in ("status", "leaves_regenerated", "samples", "metrics", "taxonomy_commit", "parent"):
        assert got[key] == ref[key], key
    a = load_file(str(Path(ref["model"], "model.safetensors")))
    b = load_file(str(Path(got["model"], "model.safetensors")))
    assert all(a[k].equal(b[k]) for k in a)
