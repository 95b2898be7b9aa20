"""`labrador train` end to end on a tiny Llama on the CPU: packing is exact, the loss normalisation makes
micro-batching irrelevant, held-out samples never train, outputs load, a killed run resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
from tinymodel import build_tiny_model  # noqa: E402
from trainkit import (  # noqa: E402
    LABRADOR,
    TASK_CORPUS,
    fsdp_launch_config,
    run_train,
    task_file,
    task_sample,
    write_config,
    write_phase,
)

from labrador.trainer.train.config import load_config  # noqa: E402
from labrador.trainer.train.data import content_key  # noqa: E402


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.mark.parametrize("attn", ["sdpa", "eager", "sdpa_varlen"])
def test_a_sample_packed_with_others_has_the_loss_it_has_alone(task_model, attn):
    import random

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labrador.trainer.train.attention import register

    register()

    from labrador.trainer.train.batch import collate_packed
    from labrador.trainer.train.data import encode
    from labrador.trainer.train.loss import token_ce

    tok = AutoTokenizer.from_pretrained(task_model)
    model = AutoModelForCausalLM.from_pretrained(task_model, attn_implementation=attn).eval()
    rng = random.Random(0)
    samples = [encode(tok, task_sample(rng, "reverse")["messages"]) for _ in range(4)]

    def losses(batch_samples):
        b = collate_packed(batch_samples)
        with torch.no_grad():
            logits = model(input_ids=b["input_ids"], position_ids=b["position_ids"], use_cache=False).logits
        out, start = [], 0
        for s in batch_samples:
            out.append(float(token_ce(logits[:, start:start + len(s)], b["targets"][:, start:start + len(s)])))
            start += len(s)
        return out

    alone = [losses([s])[0] for s in samples]
    packed = losses(samples)
    assert packed == pytest.approx(alone, rel=1e-5, abs=1e-5)
    # and the check can fail: without position ids restarting, the same row attends across samples
    if attn == "sdpa_varlen":
        return
    b = collate_packed(samples)
    with torch.no_grad():
        leaky = model(input_ids=b["input_ids"], use_cache=False).logits
    n0 = len(samples[0])
    second = float(token_ce(leaky[:, n0:n0 + len(samples[1])], b["targets"][:, n0:n0 + len(samples[1])]))
    assert abs(second - alone[1]) > 1e-3


def test_packed_micro_batches_give_the_weights_of_one_padded_batch(tmp_path, task_model):
    data = task_file(tmp_path / "p1.jsonl", "reverse", 48, words=0)
    common = {"heldout_fraction": 0.0, "max_seq_len": 64}
    phases = [{"name": "phase1", "data": str(data), "effective_batch": 48, "epochs": 2}]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    packed = write_config(tmp_path / "a", task_model, phases, packing=True, max_tokens_per_batch=64, **common)
    padded = write_config(tmp_path / "b", task_model, phases, packing=False, max_tokens_per_batch=4096, **common)
    run_train(packed)
    run_train(padded)
    rows = [json.loads(line) for line in (tmp_path / "a/out/metrics.jsonl").read_text().splitlines()]
    assert all(r["padding_tokens"] == 0 for r in rows)
    padded_rows = [json.loads(line) for line in (tmp_path / "b/out/metrics.jsonl").read_text().splitlines()]
    assert all(r["padding_tokens"] > 0 for r in padded_rows)
    wa, wb = weights(tmp_path / "a/out/phase1/final"), weights(tmp_path / "b/out/phase1/final")
    start = weights(task_model)
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=2e-5, rtol=1e-4), k
    assert any(not torch.equal(wa[k], start[k]) for k in wa)  # it did train


def test_outputs_metrics_summary_and_heldout_never_trained(tmp_path, task_model):
    import random

    rng = random.Random(1)
    p1 = [task_sample(rng, "reverse") for _ in range(60)]
    write_phase(tmp_path / "p1.jsonl", p1)
    write_phase(tmp_path / "p2.jsonl", [task_sample(rng, "upper") for _ in range(40)] + p1)  # replay in the data
    cfg = write_config(tmp_path, task_model, [{"name": "phase1", "data": "p1.jsonl"},
                                              {"name": "phase2", "data": "p2.jsonl", "lr": 5.0e-4}],
                       heldout_fraction=0.2, save_every_steps=2)
    proc = run_train(cfg, check=False)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    assert "held-out loss" in proc.stdout and "phase2/final" in proc.stdout
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for phase in ("phase1", "phase2"):
        AutoModelForCausalLM.from_pretrained(out / phase / "final")
        tok = AutoTokenizer.from_pretrained(out / phase / "final")
        assert tok.chat_template
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for key in ("phase", "step", "loss", "lr", "tokens", "padding_tokens", "tokens_per_s", "loss_ce"):
        assert all(key in r for r in rows), key
    assert [r["global_step"] for r in rows] == list(range(1, len(rows) + 1))
    summary = json.loads((out / "summary.json").read_text())
    hl, fg = summary["heldout_loss"], summary["forgetting"]
    assert set(hl) == {"phase1", "phase2"} and set(hl["phase2"]) == {"phase1", "phase2"}
    assert fg["phase2"]["phase1"] == pytest.approx(hl["phase2"]["phase1"] - hl["phase1"]["phase1"])
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    # held-out samples of phase 1 are replayed in phase 2's file, yet never train in either phase
    from labrador.trainer.train.prepare import prepare

    prep = prepare(load_config(cfg))
    held = {s.key for d in prep.data for s in d.heldout}
    trained = {s.key for d in prep.data for s in d.train}
    assert held and not held & trained
    replayed_held = {content_key(s["messages"]) for s in p1} & {s.key for s in prep.data[0].heldout}
    assert replayed_held and not replayed_held & {s.key for s in prep.data[1].train}
    # a second run into the same folder without --resume changes nothing
    before = (out / "metrics.jsonl").read_bytes()
    again = run_train(cfg, check=False)
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr
    assert (out / "metrics.jsonl").read_bytes() == before


def test_dry_run_plans_without_loading_weights_but_checks_they_are_whole(tmp_path, task_model):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(task_model, model)
    task_file(tmp_path / "p1.jsonl", "reverse", 40)
    cfg = write_config(tmp_path, model, [{"name": "phase1", "data": "p1.jsonl"}])
    proc = run_train(cfg, "--dry-run")
    assert "phase1" in proc.stdout and "parameters" in proc.stdout and "GiB" in proc.stdout
    assert not (tmp_path / "out").exists()
    weights = model / "model.safetensors"
    for damaged in (b"not weights", weights.read_bytes()[:-100], b""):
        weights.write_bytes(damaged)
        proc = run_train(cfg, "--dry-run", check=False)
        assert proc.returncode == 2 and "model.safetensors" in proc.stderr and "Traceback" not in proc.stderr
    weights.unlink()
    proc = run_train(cfg, "--dry-run", check=False)
    assert proc.returncode == 2 and "no safetensors weights" in proc.stderr


def test_bad_data_line_is_one_clear_error(tmp_path, task_model):
    p = task_file(tmp_path / "p1.jsonl", "reverse", 10)
    with p.open("a") as f:
        f.write('{"messages": "oops"}\n')
    cfg = write_config(tmp_path, task_model, [{"name": "phase1", "data": "p1.jsonl"}])
    proc = run_train(cfg, check=False)
    assert proc.returncode == 2 and "p1.jsonl:11" in proc.stderr and "Traceback" not in proc.stderr


def test_killed_at_any_moment_the_resumed_run_ends_with_the_same_weights(tmp_path, task_model):
    task_file(tmp_path / "p1.jsonl", "reverse", 96)
    task_file(tmp_path / "p2.jsonl", ["upper", "reverse"], 96)
    phases = [{"name": "phase1", "data": str(tmp_path / "p1.jsonl"), "effective_batch": 8},
              {"name": "phase2", "data": str(tmp_path / "p2.jsonl"), "effective_batch": 8}]
    for d in ("ref", "killed"):
        (tmp_path / d).mkdir()
        write_config(tmp_path / d, task_model, phases, save_every_steps=1, keep_checkpoints=2)
    run_train(tmp_path / "ref/train.yaml")
    cfg = tmp_path / "killed/train.yaml"
    metrics = tmp_path / "killed/out/metrics.jsonl"
    kills = 0
    for target_lines in (3, 14, 25):  # inside phase 1, around the phase boundary, inside phase 2
        cmd = [LABRADOR, "train", "--config", str(cfg), "-q"] + (["--resume"] if kills else [])
        proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if metrics.is_file() and metrics.read_text().count("\n") >= target_lines:
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.01)
        proc.wait()
    assert kills >= 2
    run_train(cfg, "--resume")
    for phase in ("phase1", "phase2"):
        ref, got = weights(tmp_path / f"ref/out/{phase}/final"), weights(tmp_path / f"killed/out/{phase}/final")
        for k in ref:
            assert torch.equal(ref[k], got[k]), (phase, k)
    ref_rows = [json.loads(x) for x in (tmp_path / "ref/out/metrics.jsonl").read_text().splitlines()]
    got_rows = [json.loads(x) for x in metrics.read_text().splitlines()]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in rows]  # noqa: E731
    assert strip(got_rows) == strip(ref_rows)
    assert len(list((tmp_path / "killed/out/checkpoints").iterdir())) <= 2
    ref_summary = json.loads((tmp_path / "ref/out/summary.json").read_text())
    got_summary = json.loads((tmp_path / "killed/out/summary.json").read_text())
    assert got_summary["heldout_loss"] == ref_summary["heldout_loss"]


@pytest.mark.parametrize("mode", ["sft", "kd", "lora"])
def test_two_processes_under_accelerate_launch_match_one(tmp_path, task_model, mode):
    """DDP on CPU (gloo): the same effective batch split over two ranks gives the single-process weights.
    (`accelerate launch --cpu` starts one process unless MPI is set up; `--multi_gpu` on a machine without
    GPUs starts N CPU processes through torchrun.) With distillation on too: each rank holds the whole frozen
    teacher (not wrapped, not trained) and the KD term is reduced like the reply loss. With LoRA: only the
    adapters' gradients are reduced, and the merged folders agree."""
    task_file(tmp_path / "p1.jsonl", "reverse", 40)
    phases = [{"name": "phase1", "data": str(tmp_path / "p1.jsonl"), "effective_batch": 12}]
    extra: dict = {"lora": {"r": 4, "alpha": 8.0, "dropout": 0.0}} if mode == "lora" else {}
    distill = mode == "kd"
    if distill:
        teacher = build_tiny_model(tmp_path / "teacher", corpus=TASK_CORPUS, seed=99)
        extra = {"distill": {"teacher_model": str(teacher), "lambda": 0.5}}
        before = weights(teacher)
    for d in ("one", "two"):
        (tmp_path / d).mkdir()
        write_config(tmp_path / d, task_model, phases, max_tokens_per_batch=96, max_seq_len=96, **extra)
    run_train(tmp_path / "one/train.yaml")
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    proc = subprocess.run([accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
                           str(__import__("loopback").free_port()), LABRADOR, "train", "--config",
                           str(tmp_path / "two/train.yaml"), "-q"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = weights(tmp_path / "one/out/phase1/final"), weights(tmp_path / "two/out/phase1/final")
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-5, rtol=1e-4), k
    rows = [json.loads(x) for x in (tmp_path / "two/out/metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(x) for x in (tmp_path / "one/out/metrics.jsonl").read_text().splitlines()]
    assert [r["tokens"] for r in rows] == [r["tokens"] for r in ref]  # both ranks' tokens counted once
    if distill:
        assert all("loss_pred" in r for r in rows)
        assert [r["loss_pred"] for r in rows] == pytest.approx([r["loss_pred"] for r in ref], rel=1e-4)
        after = weights(teacher)
        assert all(torch.equal(before[k], after[k]) for k in before)  # the teacher was never trained


def fsdp_command(tmp_path: Path, config: Path, *extra: str) -> list[str]:
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    return [accelerate, "launch", "--config_file", str(fsdp_launch_config(tmp_path)), LABRADOR, "train", "--config",
            str(config), "-q", *extra]


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it (torchrun starts each rank in a session of its own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, found = [pid], []
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    for p in found:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


def test_fsdp2_on_two_cpu_processes_matches_one_resumes_exactly_and_saves_one_folder(tmp_path):
    """FSDP2 (our fully_shard path, the one a GPU run takes) over gloo: the weights of one process within float
    tolerance; a run whose processes are all SIGKILLed resumes from its sharded checkpoint to the uninterrupted
    run's weights bit for bit; the final folder is one whole Hugging Face folder that `from_pretrained` loads.
    The model ties its head to its embeddings, like SmolLM2."""
    from transformers import AutoModelForCausalLM

    model = build_tiny_model(tmp_path / "tied", corpus=TASK_CORPUS, tie=True)
    task_file(tmp_path / "p1.jsonl", "reverse", 40)
    phases = [{"name": "phase1", "data": str(tmp_path / "p1.jsonl"), "effective_batch": 12, "epochs": 2}]
    for d in ("one", "fsdp", "killed"):
        write_config(tmp_path / d, model, phases, max_tokens_per_batch=96, max_seq_len=96, save_every_steps=1,
                     keep_checkpoints=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_train(tmp_path / "one/train.yaml")
    proc = subprocess.run(fsdp_command(tmp_path, tmp_path / "fsdp/train.yaml"), capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, fsdp = weights(tmp_path / "one/out/phase1/final"), weights(tmp_path / "fsdp/out/phase1/final")
    assert set(one) == set(fsdp)
    for k in one:
        assert torch.allclose(one[k], fsdp[k], atol=1e-5, rtol=1e-4), k
    start = weights(model)
    assert any(not torch.equal(start[k], fsdp[k]) for k in start)  # it trained
    ckpts = sorted((tmp_path / "fsdp/out/checkpoints").iterdir())
    assert len([f for f in ckpts[-1].rglob("*.distcp")]) == 2  # sharded: one file per rank

    metrics = tmp_path / "killed/out/metrics.jsonl"
    job = subprocess.Popen(fsdp_command(tmp_path, tmp_path / "killed/train.yaml"), env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while job.poll() is None and time.monotonic() < deadline:
        if metrics.is_file() and metrics.read_text().count("\n") >= 3:
            kill_tree(job.pid)  # the launcher and both ranks, as when a machine dies
            break
        time.sleep(0.01)
    job.wait()
    assert not (tmp_path / "killed/out/phase1/final").exists()
    proc = subprocess.run(fsdp_command(tmp_path, tmp_path / "killed/train.yaml", "--resume"), capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming phase phase1 after step " in proc.stderr  # from a checkpoint, not from the start
    resumed = weights(tmp_path / "killed/out/phase1/final")
    for k in fsdp:
        assert torch.equal(fsdp[k], resumed[k]), k
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "killed/out/phase1/final"))
    assert torch.equal(loaded.lm_head.weight, loaded.model.embed_tokens.weight)
    assert torch.equal(loaded.model.embed_tokens.weight, fsdp["model.embed_tokens.weight"])


def test_fsdp_settings_come_from_the_launch_and_unsupported_ones_are_refused():
    from labrador.trainer.train.config import TrainConfigError
    from labrador.trainer.train.parallel import fsdp_settings

    assert fsdp_settings({}) is None
    got = fsdp_settings({"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_RESHARD_AFTER_FORWARD": "false",
                         "FSDP_TRANSFORMER_CLS_TO_WRAP": "LlamaDecoderLayer, Other"})
    assert got.reshard_after_forward is False and got.layer_classes == ("LlamaDecoderLayer", "Other")
    with pytest.raises(TrainConfigError, match="fsdp_version: 2"):
        fsdp_settings({"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1"})
    with pytest.raises(TrainConfigError, match="SIZE_BASED_WRAP"):
        fsdp_settings({"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_AUTO_WRAP_POLICY": "SIZE_BASED_WRAP"})
    for value in ("banana", "maybe", "5"):  # issue 29.17: never read as false
        with pytest.raises(TrainConfigError, match=f"fsdp_offload_params is '{value}'.*true or false"):
            fsdp_settings({"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_OFFLOAD_PARAMS": value})


def test_a_refusal_is_said_once_by_rank_0_of_a_launched_run(tmp_path):
    """Issue 29.17: every rank refuses (exit 2), only rank 0 says why."""
    import os
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("model: m\nlearning_rate: 1\n")
    labrador = str(Path(sys.executable).with_name("labrador"))
    for rank, says in (("0", True), ("1", False)):
        proc = subprocess.run([labrador, "train", "--config", str(bad)], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "RANK": rank})
        assert proc.returncode == 2 and ("error:" in proc.stderr) is says and "Traceback" not in proc.stderr


def forgetting_after(tmp_path: Path, model: Path, replay: bool) -> tuple[float, dict]:
    task_file(tmp_path / "p1.jsonl", "reverse", 160, seed=1)
    p2 = ["upper", "reverse"] if replay else "upper"
    task_file(tmp_path / "p2.jsonl", p2, 320 if replay else 160, seed=2)
    cfg = write_config(tmp_path, model, [
        {"name": "phase1", "data": "p1.jsonl", "epochs": 4, "lr": 3.0e-3, "warmup_steps": 2},
        {"name": "phase2", "data": "p2.jsonl", "epochs": 4, "lr": 3.0e-3, "warmup_steps": 2},
    ], heldout_fraction=0.1)
    run_train(cfg)
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    return summary["forgetting"]["phase2"]["phase1"], summary


def test_replay_keeps_the_first_task_that_plain_sequential_training_forgets(tmp_path, task_model):
    (tmp_path / "plain").mkdir()
    (tmp_path / "replay").mkdir()
    plain, s_plain = forgetting_after(tmp_path / "plain", task_model, replay=False)
    replayed, s_replay = forgetting_after(tmp_path / "replay", task_model, replay=True)
    print(f"forgetting of phase1 after phase2: without replay {plain:+.3f}, with replay {replayed:+.3f}; "
          f"phase1 held-out after phase1 {s_plain['heldout_loss']['phase1']['phase1']:.3f}")
    assert plain > 0.5  # the first task is clearly forgotten
    assert replayed < plain / 4


def test_pruning_and_cleanup_touch_only_the_checkpoints_this_trainer_wrote(tmp_path):
    """A kill inside the pruning's delete leaves a ``.old`` folder (pruning renames first): cleaned up. A
    folder we cannot prove ours (no state.json of ours, under a checkpoint's name or not) is never resumed
    from and never deleted."""
    from labrador.trainer.train import checkpoint as ckpt

    root = tmp_path / "checkpoints"
    for step in (1, 2, 3):
        ckpt.save_checkpoint(root, 0, "phase1", step, {"step": step, "fingerprint": "f"},
                             lambda tmp: tmp.mkdir(parents=True), keep=9)
    half = root / ckpt.checkpoint_name(0, "phase1", 1)
    (half / ckpt.STATE).unlink()
    (half / "notes.txt").write_text("mine")
    foreign = root / ckpt.checkpoint_name(0, "phase1", 9)
    foreign.mkdir()
    (foreign / ckpt.STATE).write_text('{"step": 9}')  # not written by us: no fingerprint
    (root / "results.csv").write_text("a,b")
    (root / ".00-phase1-step0000002.old77").mkdir()
    assert [s for _, s, _ in ckpt.checkpoints(root)] == [2, 3]
    ckpt.clean_temporaries(root)
    ckpt.prune(root, keep=1)
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [ckpt.checkpoint_name(0, "phase1", 3), half.name, foreign.name, "results.csv"])
    assert ckpt.usable(root)[0][3]["step"] == 3
