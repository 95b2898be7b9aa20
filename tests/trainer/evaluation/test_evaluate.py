"""`labrador evaluate`: a model trained on a leaf's task beats an untrained one in the judge's eyes, swapping
them says "regressed" and exits 1, judge failures are counted (never a score), and the verdicts follow the
contract. Real components: tiny Llamas through `from_pretrained`, our trainer, a loopback judge server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
from judgekit import LEAF, SEEDS, ExactnessJudge, git_committer, night_toml, write_leaf  # noqa: E402
from tinymodel import build_tiny_model  # noqa: E402
from trainkit import TASK_CORPUS, write_config, write_phase  # noqa: E402

from labrador.trainer.evaluation.judging import Judgement  # noqa: E402
from labrador.trainer.evaluation.questions import Question  # noqa: E402
from labrador.trainer.evaluation.verdicts import branch_eval, verdict  # noqa: E402

LABRADOR = str(Path(sys.executable).with_name("labrador"))


def leaf_yaml() -> str:
    return yaml.safe_dump({"version": 3, "created_by": "tester",
                           "task_description": "Reverse the order of the words the user gives.",
                           "seed_examples": [{"question": q, "answer": a} for q, a in SEEDS]}, sort_keys=False)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(taxonomy, trained, untrained): the candidate is the untrained model taught the leaf's seeds."""
    root = tmp_path_factory.mktemp("eval")
    taxonomy = root / "taxonomy"
    (taxonomy / LEAF).mkdir(parents=True)
    (taxonomy / LEAF / "qna.yaml").write_text(leaf_yaml())
    untrained = build_tiny_model(root / "untrained", corpus=TASK_CORPUS)
    data = write_phase(root / "seeds.jsonl", [{"messages": [{"role": "user", "content": q},
                                                            {"role": "assistant", "content": a}], "leaf": LEAF}
                                              for q, a in SEEDS])
    config = write_config(root / "train", untrained, [{"name": "p", "data": str(data), "epochs": 80,
                                                      "effective_batch": 5, "lr": 3.0e-3, "warmup_steps": 2}],
                          heldout_fraction=0.0)
    proc = subprocess.run([LABRADOR, "train", "--config", str(config), "-q"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return taxonomy, root / "train" / "out" / "p" / "final", untrained


def evaluate(taxonomy: Path, model: Path, baseline: Path, judge: str, *extra: str) -> tuple[int, dict, str]:
    proc = subprocess.run([LABRADOR, "evaluate", "--taxonomy", str(taxonomy), "--model", str(model), "--baseline",
                           str(baseline), "--judge", judge, "--format", "json", "-q", *extra],
                          capture_output=True, text=True, timeout=600)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {}
    return proc.returncode, result, proc.stderr


def test_a_trained_model_improves_and_the_swap_regresses_with_exit_1(models, tmp_path):
    taxonomy, trained, untrained = models
    with ExactnessJudge() as judge:
        code, result, err = evaluate(taxonomy, trained, untrained, judge.base_url, "--out", str(tmp_path / "e.json"))
        assert code == 0, err
        leaf = result["leaves"][LEAF]
        assert leaf["verdict"] == "improved" and leaf["questions"] == len(SEEDS)
        assert leaf["model"] >= 8 and leaf["baseline"] <= 4 and leaf["delta"] == leaf["model"] - leaf["baseline"]
        assert result["judge_error_rate"] == 0.0 and result["model"] == str(trained)
        assert json.loads((tmp_path / "e.json").read_text()) == result
        details = [json.loads(x) for x in (tmp_path / "e.details.jsonl").read_text().splitlines()]
        assert [d["reference"] for d in details] == [a for _, a in SEEDS]
        assert sum(d["model"]["answer"] == d["reference"] for d in details) >= 4  # it learnt the task
        # every answer was judged alone: one request per answer, never two answers in one prompt
        judged = [b for b in judge.bodies if "[Reference]" in b["messages"][-1]["content"]]
        assert len(judged) == 2 * len(SEEDS)
        assert all(b["messages"][-1]["content"].count("[Answer]") == 1 for b in judged)

        code, swapped, _ = evaluate(taxonomy, untrained, trained, judge.base_url)
        assert code == 1 and swapped["leaves"][LEAF]["verdict"] == "regressed"
        assert swapped["leaves"][LEAF]["delta"] == -leaf["delta"]


def test_judge_failures_are_counted_not_scored(models):
    taxonomy, trained, untrained = models
    with ExactnessJudge() as judge:
        judge.fail_marker = SEEDS[0][1]  # every verdict on the first question (both answers) is prose
        code, result, err = evaluate(taxonomy, trained, untrained, judge.base_url)
    assert code == 0, err
    assert result["judge_error_rate"] == pytest.approx(2 / (2 * len(SEEDS)))
    leaf = result["leaves"][LEAF]
    assert leaf["questions"] == len(SEEDS) and leaf["verdict"] == "improved"


def test_human_output_and_bad_input(models, tmp_path):
    taxonomy, trained, untrained = models
    with ExactnessJudge() as judge:
        proc = subprocess.run([LABRADOR, "evaluate", "--taxonomy", str(taxonomy), "--model", str(trained),
                               "--baseline", str(untrained), "--judge", judge.base_url, "-q"],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0 and LEAF in proc.stdout and "improved" in proc.stdout
        assert "judge error rate 0.0%" in proc.stdout
        code, _, err = evaluate(taxonomy, tmp_path / "nothing", untrained, judge.base_url)
        assert code == 2 and "is not a folder" in err and "Traceback" not in err
        code, _, err = evaluate(taxonomy, trained, untrained, judge.base_url, str(taxonomy / "nope"))
        assert code == 2 and "Traceback" not in err


def test_the_baseline_marks_new_leaves(models, tmp_path):
    from labrador.trainer.evaluation.seen import read_seen, write_seen

    taxonomy, trained, untrained = models
    baseline = tmp_path / "baseline"
    import shutil

    shutil.copytree(untrained, baseline)
    write_seen(baseline, ["compositional_skills/other"])
    assert read_seen(baseline) == {"compositional_skills/other"}
    with ExactnessJudge() as judge:
        code, result, _ = evaluate(taxonomy, trained, baseline, judge.base_url)
    leaf = result["leaves"][LEAF]
    assert code == 0 and leaf["verdict"] == "new" and leaf["baseline"] is not None and leaf["delta"] > 0


# -- the pure verdicts ----------------------------------------------------------------------------------


def test_verdicts_follow_the_threshold():
    assert verdict(1.0, new=False, min_delta=1.0) == "improved"
    assert verdict(0.99, new=False, min_delta=1.0) == "unchanged"
    assert verdict(-1.0, new=False, min_delta=1.0) == "regressed"
    assert verdict(-5.0, new=True, min_delta=1.0) == "new"
    assert verdict(None, new=False, min_delta=1.0) == "unjudged"


def test_scores_are_paired_over_questions_both_sides_judged():
    qs = [Question("a", f"q{i}", "r") for i in range(3)] + [Question("b", "q", "r")]
    model = [Judgement(9), Judgement(None, error="x"), Judgement(7), Judgement(None, error="x")]
    base = [Judgement(3), Judgement(1), Judgement(5), Judgement(None, error="x")]
    out = branch_eval(judge="j", model="m", baseline="b", questions=qs, model_judgements=model,
                      baseline_judgements=base, seen=None, min_delta=1.0)
    a = out["leaves"]["a"]
    assert (a["model"], a["baseline"], a["delta"], a["questions"]) == (8.0, 4.0, 4.0, 3)  # q1 left out of both
    b = out["leaves"]["b"]
    assert b["model"] is None and b["delta"] is None and b["verdict"] == "unjudged"
    assert out["judge_error_rate"] == 3 / 8
    assert set(out) == {"judge", "model", "baseline", "judge_error_rate", "leaves"}


# -- in the nightly job: a night that makes an earlier leaf worse is rejected, naming it ----------------------

UPPER = "compositional_skills/upper"
UPPER_SEEDS = [("upper: red cat sun", "RED CAT SUN"), ("upper: dog moon tree", "DOG MOON TREE"),
               ("upper: star rock", "STAR ROCK"), ("upper: bird frog leaf", "BIRD FROG LEAF"),
               ("upper: rain sand blue", "RAIN SAND BLUE")]


def test_a_night_that_makes_an_earlier_leaf_worse_is_rejected(tmp_path):
    work = tmp_path / "repo"
    write_leaf(work / "taxonomy" / LEAF, SEEDS, "Reverse the order of the words the user gives.")
    write_leaf(work / "taxonomy" / UPPER, UPPER_SEEDS, "Upper-case the words the user gives.")
    base = build_tiny_model(tmp_path / "base", corpus=TASK_CORPUS)
    recipe = tmp_path / "no-replay.yaml"  # no replay: what tonight does not train, it may forget
    recipe.write_text("version: 1\nphases:\n  - name: night\n    groups:\n      - name: new\n        include: ['**']\n")
    commit = git_committer(work)
    with ExactnessJudge() as judge:
        (work / "labrador.toml").write_text(night_toml(
            judge.base_url, base, epochs=60, nightly=f'recipe = "{recipe}"\ngate_max_forgetting = 100.0\n'))
        commit("two leaves")
        run = [LABRADOR, "nightly", "--config", str(work / "labrador.toml"), "--state-dir", str(tmp_path / "state"),
               "--taxonomy", str(work / "taxonomy")]
        first = subprocess.run(run, capture_output=True, text=True, timeout=900)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        # tonight only the upper-case leaf changes (new answers), and nothing replays the reverse leaf
        write_leaf(work / "taxonomy" / UPPER, [(q, a.lower()) for q, a in UPPER_SEEDS], "Lower-case the words.")
        commit("a changed leaf")
        second = subprocess.run(run, capture_output=True, text=True, timeout=900)
    from labrador.trainer.nightly.registry import Registry

    record = Registry(tmp_path / "state" / "registry.db").runs()[0]
    assert second.returncode == 1 and record["status"] == "rejected", record["reason"]
    assert "max_leaf_regression" in record["reason"] and LEAF in record["reason"]
    assert record["branch_eval"]["leaves"][LEAF]["verdict"] == "regressed"


def test_out_refuses_files_we_did_not_write_and_unwritable_targets_before_any_work(models, tmp_path):
    """Issue 29.1: `--out` never overwrites a foreign file or its `.details.jsonl`, and an unwritable target
    fails before any model answers (nothing evaluated, nothing lost); our own files are replaced."""
    taxonomy, trained, untrained = models
    notes = tmp_path / "notes.txt"
    notes.write_text("thesis\n")
    (tmp_path / "mine.details.jsonl").write_text("my own lines\n")
    with ExactnessJudge() as judge:
        for target, says in ((notes, "was not written by"), (tmp_path / "mine.json", "was not written by"),
                             (tmp_path, "is a folder"), (notes / "e.json", "is a file")):
            code, _, err = evaluate(taxonomy, trained, untrained, judge.base_url, "--out", str(target))
            assert code == 2 and says in err and "Traceback" not in err, (target, err)
        assert judge.chat_requests == 0  # refused before any judging (and before any model answered)
        assert notes.read_text() == "thesis\n" and (tmp_path / "mine.details.jsonl").read_text() == "my own lines\n"
        assert not (tmp_path / "mine.json").exists() and not (tmp_path / "notes.details.jsonl").exists()
        out = tmp_path / "e.json"
        for _ in range(2):  # a file we wrote is ours to replace
            code, _, err = evaluate(taxonomy, trained, untrained, judge.base_url, "--out", str(out))
            assert code == 0, err
        assert json.loads(out.read_text())["labrador_evaluation"] == 1
        assert all(json.loads(x)["labrador_evaluation"] == 1
                   for x in (tmp_path / "e.details.jsonl").read_text().splitlines())


def test_damaged_weights_a_broken_judge_prompt_and_an_unknown_model_type_are_one_line_errors(models, tmp_path):
    """Issue 29.12, 29.14 (evaluate), 29.15: each is exit 2, one line, no traceback, nothing judged."""
    import shutil

    taxonomy, trained, untrained = models
    damaged = tmp_path / "damaged"
    shutil.copytree(trained, damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    alien = tmp_path / "alien"
    shutil.copytree(trained, alien)
    config = json.loads((alien / "config.json").read_text())
    (alien / "config.json").write_text(json.dumps({**config, "model_type": "llamma"}))
    repo = tmp_path / "repo"
    shutil.copytree(taxonomy, repo / "taxonomy")
    (repo / ".git").mkdir()
    (repo / "sdg" / "prompts").mkdir(parents=True)
    (repo / "sdg" / "prompts" / "answer_judge.yaml").write_text("name: answer_judge\nversion: [\n")
    with ExactnessJudge() as judge:
        code, _, err = evaluate(taxonomy, damaged, untrained, judge.base_url)
        assert code == 2 and "cut short" in err and "Traceback" not in err and len(err.splitlines()) == 1, err
        code, _, err = evaluate(taxonomy, alien, untrained, judge.base_url)
        assert code == 2 and "'llamma'" in err and "'llama'" in err and "Traceback" not in err, err
        code, _, err = evaluate(repo / "taxonomy", trained, untrained, judge.base_url)
        assert code == 2 and "answer_judge.yaml" in err and "Traceback" not in err, err
        assert judge.chat_requests == 0


def test_an_evaluation_whose_every_verdict_failed_says_it_could_not_judge(models):
    """Issue 29.18: no verdict is no evidence: `unjudged`, exit 1, never `unchanged`."""
    taxonomy, trained, untrained = models
    with ExactnessJudge() as judge:
        judge.fail_marker = ""  # every request: prose, which fails the verdict's schema
        code, result, err = evaluate(taxonomy, trained, untrained, judge.base_url)
    assert code == 1 and result["leaves"][LEAF]["verdict"] == "unjudged" and "could not judge 1 of 1" in err
    assert result["judge_error_rate"] == 1.0


def test_model_folders_whose_path_holds_a_space_are_one_model_each(models, tmp_path):
    """Issue 29.5: a path with a space is a folder, never a list of teacher endpoints."""
    import shutil

    taxonomy, trained, untrained = models
    spaced = tmp_path / "my models" / "the candidate"
    shutil.copytree(trained, spaced)
    with ExactnessJudge() as judge:
        code, result, err = evaluate(taxonomy, spaced, untrained, judge.base_url)
    assert code == 0 and result["leaves"][LEAF]["verdict"] == "improved", err


def test_judge_free_metrics_on_held_out_seeds_and_their_bad_input(models, tmp_path):
    """Issue 30.5: ref_nll and rouge_l need no judge; the trained model's reference answers are likelier
    (improved), the swap regresses (exit 1); --heldout asks only the held-out pair; bad input is one line."""
    taxonomy, trained, untrained = models
    code, result, err = evaluate(taxonomy, trained, untrained, "unused", "--metrics", "ref_nll,rouge_l")
    assert code == 0, err
    leaf = result["leaves"][LEAF]
    nll = leaf["metrics"]["ref_nll"]
    assert nll["model"] < nll["baseline"] and nll["delta"] < 0 and leaf["verdict"] == "improved"
    assert leaf["metrics"]["rouge_l"]["model"] >= leaf["metrics"]["rouge_l"]["baseline"]
    assert result["judge"] is None and result["drift"]["baseline"] is not None and leaf["questions"] == len(SEEDS)
    code, swapped, _ = evaluate(taxonomy, untrained, trained, "unused", "--metrics", "ref_nll")
    assert code == 1 and swapped["leaves"][LEAF]["metrics_verdict"] == "regressed"
    code, held, err = evaluate(taxonomy, trained, untrained, "unused", "--metrics", "ref_nll", "--heldout")
    assert code in (0, 1) and held["leaves"][LEAF]["questions"] == 1, err
    code, _, err = evaluate(taxonomy, trained, untrained, "unused", "--metrics", "ref_nll,blue")
    assert code == 2 and "unknown metric blue" in err and "Traceback" not in err
    config = tmp_path / "labrador.toml"
    config.write_text("[evaluate]\nholdout_seeds = 5\n")
    code, _, err = evaluate(taxonomy, trained, untrained, "unused", "--metrics", "ref_nll", "--heldout",
                            "--config", str(config))
    assert code == 2 and "too few seed pairs to hold 5 out" in err and "Traceback" not in err
    config.write_text("[evaluate]\nholdout_seeds = -1\n")
    code, _, err = evaluate(taxonomy, trained, untrained, "unused", "--metrics", "ref_nll", "--config", str(config))
    assert code == 2 and "holdout_seeds" in err and "Traceback" not in err


def test_each_stage_prints_progress_lines_into_a_log(models):
    """Not a terminal (a CI log): model answers, baseline answers and judging each say done/total, one stage
    after another; ``-q`` says nothing."""
    import os

    taxonomy, trained, untrained = models
    env = {**os.environ, "LABRADOR_PROGRESS_EVERY_S": "0"}
    with ExactnessJudge() as judge:
        argv = [LABRADOR, "evaluate", "--taxonomy", str(taxonomy), "--model", str(trained), "--baseline",
                str(untrained), "--judge", judge.base_url, "--format", "json"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
        quiet = subprocess.run([*argv, "-q"], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    q = json.loads(proc.stdout)["leaves"][LEAF]["questions"]
    lines = proc.stderr.splitlines()
    last = {stage: [x for x in lines if x.startswith(f"{stage}: ")][-1] for stage in
            ("model answers", "baseline answers", "judging")}
    assert last["model answers"].startswith(f"model answers: {q}/{q} (100%)")
    assert last["baseline answers"].startswith(f"baseline answers: {q}/{q} (100%)")
    assert last["judging"].startswith(f"judging: {2 * q}/{2 * q} (100%)")
    firsts = [next(i for i, x in enumerate(lines) if x.startswith(f"{s}: ")) for s in last]
    assert firsts == sorted(firsts)  # one stage after another
    assert quiet.returncode == 0 and not any(x.startswith(("model answers", "judging")) for x in
                                             quiet.stderr.splitlines())
