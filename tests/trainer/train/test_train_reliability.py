"""`labrador train` against hostile or unlucky input (issue 21, items 2-4 and 9-11): an output_dir that is not
ours is refused untouched, two runs never share one, numbers are finite before any work, a diverging run
stops, a damaged checkpoint falls back to the previous one, changed data is never mixed into a resume, and
broken phase files are one line naming file and line."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
from trainkit import LABRADOR, task_file, write_config  # noqa: E402
from trainkit import run_train as run_checked  # noqa: E402

from labrador.trainer.train.config import TrainConfigError, TrainFailed, load_config  # noqa: E402


def run_train(config: Path, *extra: str) -> subprocess.CompletedProcess:
    """``labrador train`` whatever its exit status (these tests check the failures)."""
    return run_checked(config, *extra, check=False)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- item 2: an output_dir that is not ours -------------------------------------------------------------


def test_an_unrelated_output_dir_is_refused_and_left_untouched(tmp_path, task_model):
    task_file(tmp_path / "p1.jsonl", "reverse", 16)
    cfg = write_config(tmp_path, task_model, [{"name": "phase1", "data": "p1.jsonl"}])
    out = tmp_path / "out"
    (out / "checkpoints" / "00-phase1-step0000001").mkdir(parents=True)
    (out / "checkpoints" / "00-phase1-step0000001" / "state.json").write_text('{"step": 1}')
    (out / "phase1").mkdir()
    (out / "phase1" / "eval.json").write_text('{"heldout_loss": {}, "phase": {}}')
    (out / "metrics.jsonl").write_text("my own numbers\n")
    before = tree(out)
    for extra in ((), ("--resume",)):
        proc = run_train(cfg, *extra)
        assert proc.returncode == 2 and "holds no Labrador training run" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert tree(out) == before


def test_a_stray_eval_json_in_our_own_run_does_not_skip_the_phase(tmp_path, task_model):
    task_file(tmp_path / "p1.jsonl", "reverse", 16)
    cfg = write_config(tmp_path, task_model, [{"name": "phase1", "data": "p1.jsonl"}])
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"fingerprint": "someone else's"}))
    (out / "phase1").mkdir()
    (out / "phase1" / "eval.json").write_text('{"heldout_loss": {"phase1": 0.0}, "phase": {}}')
    proc = run_train(cfg)
    assert proc.returncode == 0, proc.stderr
    assert (out / "phase1" / "final" / "model.safetensors").is_file()
    assert json.loads((out / "phase1" / "eval.json").read_text())["heldout_loss"]["phase1"] > 0


# ---- item 3: one run per output_dir -----------------------------------------------------------------------


def test_a_second_run_on_the_same_output_dir_is_refused_naming_the_holder(tmp_path, task_model):
    task_file(tmp_path / "p1.jsonl", "reverse", 400)
    cfg = write_config(tmp_path, task_model, [{"name": "phase1", "data": "p1.jsonl", "effective_batch": 2,
                                                "epochs": 20}])
    first = subprocess.Popen([LABRADOR, "train", "--config", str(cfg), "-q"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        lock = tmp_path / "out" / ".lock"
        deadline = time.time() + 120
        while not lock.is_file() and time.time() < deadline:
            time.sleep(0.1)
        assert lock.is_file()
        for extra in ((), ("--resume",)):
            proc = run_train(cfg, *extra)
            assert proc.returncode == 1, proc.stderr
            assert f"pid {first.pid}" in proc.stderr and "Traceback" not in proc.stderr
        assert first.poll() is None  # still the one writer
    finally:
        first.kill()
        first.wait()
    metrics = (tmp_path / "out" / "metrics.jsonl")
    steps = [json.loads(line)["global_step"] for line in metrics.read_text().splitlines()] if metrics.is_file() else []
    assert steps == list(range(1, len(steps) + 1))  # one writer: no step twice


# ---- items 4 and 9: numbers checked before any work; a diverging run stops --------------------------------


@pytest.mark.parametrize("phase, top, message", [
    ({"lr": float("inf")}, {}, "finite"),
    ({"lr": float("nan")}, {}, "finite"),
    ({"lr": 1e30}, {}, "at most"),
    ({"max_grad_norm": float("nan")}, {}, "finite"),
    ({"betas": [1.5, 0.9]}, {}, r"betas\[0\]: must be below 1"),
    ({}, {"seed": 2**70}, "below 2\\*\\*32"),
    ({}, {"seed": 2**40}, "below 2\\*\\*32"),
    ({}, {"trackers": ["nonsense"]}, "trackers: must be one of aim, .*got 'nonsense'"),
])
def test_invalid_numbers_are_refused_before_any_work_and_leave_nothing(tmp_path, task_model, phase, top, message):
    task_file(tmp_path / "p1.jsonl", "reverse", 16)
    cfg = write_config(tmp_path, task_model, [{"name": "phase1", "data": "p1.jsonl", **phase}], **top)
    with pytest.raises(TrainConfigError, match=message):
        load_config(cfg)
    proc = run_train(cfg)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    good = write_config(tmp_path, task_model, [{"name": "phase1", "data": "p1.jsonl"}])
    assert run_train(good).returncode == 0  # the corrected config starts fresh


def test_a_run_whose_loss_goes_non_finite_stops_and_saves_nothing(tmp_path, task_model):
    from labrador.trainer.train.loop import train
    from labrador.trainer.train.loss import sft_loss

    task_file(tmp_path / "p1.jsonl", "reverse", 48)
    cfg = load_config(write_config(tmp_path, task_model, [{"name": "phase1", "data": "p1.jsonl",
                                                           "effective_batch": 8}], save_every_steps=1))
    calls = []

    def poisoned(model, batch):
        out = sft_loss(model, batch)
        calls.append(1)
        if len(calls) >= 3:
            out.total = out.total * float("nan")
        return out

    with pytest.raises(TrainFailed, match="step 3: the gradient norm is nan"):
        train(cfg, loss_factory=lambda c, a: poisoned, progress=False)
    out = tmp_path / "out"
    assert not (out / "phase1" / "final").exists() and not (out / "phase1" / "eval.json").exists()
    steps = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert steps and all("step0000003" not in s for s in steps)
    from labrador.validators.locks import PidLock

    with PidLock(out / ".lock"):  # released: the next run may start
        pass


# ---- item 10: damaged checkpoints, changed data -------------------------------------------------------------


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, task_model):
    from labrador.trainer.train import checkpoint as ckpt

    task_file(tmp_path / "p1.jsonl", "reverse", 64)
    cfg = write_config(tmp_path, task_model, [{"name": "phase1", "data": "p1.jsonl", "effective_batch": 8}],
                       save_every_steps=2, keep_checkpoints=3)
    full = tmp_path / "full"
    full.mkdir()
    assert run_train(write_config(full, task_model, [{"name": "phase1", "data": str(tmp_path / "p1.jsonl"),
                                                      "effective_batch": 8}], save_every_steps=2,
                                  keep_checkpoints=3)).returncode == 0
    assert run_train(cfg).returncode == 0
    out = tmp_path / "out"
    import shutil

    shutil.rmtree(out / "phase1")  # as if killed after the last checkpoint
    (out / "phase1").mkdir()
    found = ckpt.checkpoints(out / "checkpoints")
    assert len(found) >= 2
    newest = found[-1][2]
    damaged = next(p for p in sorted(newest.iterdir()) if p.name.endswith(".safetensors"))
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    proc = run_train(cfg, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert f"checkpoint {newest.name} is damaged" in proc.stderr and "Traceback" not in proc.stderr
    from safetensors.torch import load_file

    a = load_file(str(out / "phase1" / "final" / "model.safetensors"))
    b = load_file(str(full / "out" / "phase1" / "final" / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_a_state_file_that_does_not_load_falls_back_too(tmp_path, task_model):
    from labrador.trainer.train import checkpoint as ckpt

    task_file(tmp_path / "p1.jsonl", "reverse", 64)
    cfg = write_config(tmp_path, task_model, [{"name": "phase1", "data": "p1.jsonl", "effective_batch": 8}],
                       save_every_steps=2, keep_checkpoints=3)
    assert run_train(cfg).returncode == 0
    out = tmp_path / "out"
    import shutil

    shutil.rmtree(out / "phase1")
    newest = ckpt.checkpoints(out / "checkpoints")[-1][2]
    pkl = newest / "optimizer.bin"
    pkl.write_bytes(b"\x00" * pkl.stat().st_size)  # same size, unreadable
    proc = run_train(cfg, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert f"checkpoint {newest.name} cannot be loaded" in proc.stderr and "Traceback" not in proc.stderr


def test_resume_refuses_a_data_file_whose_content_changed(tmp_path, task_model):
    task_file(tmp_path / "p1.jsonl", "reverse", 64)
    cfg = write_config(tmp_path, task_model, [{"name": "phase1", "data": "p1.jsonl", "effective_batch": 8}],
                       save_every_steps=2)
    assert run_train(cfg).returncode == 0
    task_file(tmp_path / "p1.jsonl", "upper", 64)  # same path, new content
    proc = run_train(cfg, "--resume")
    assert proc.returncode == 2 and "the settings or the data changed" in proc.stderr


# ---- item 11: broken phase files --------------------------------------------------------------------------


def _bad(tmp_path: Path, line: bytes, blank_lines: int = 0) -> str:
    p = task_file(tmp_path / "p1.jsonl", "reverse", 5)
    with p.open("ab") as f:
        f.write(b"\n" * blank_lines + line + b"\n")
    cfg = write_config(tmp_path, tmp_path / "model", [{"name": "phase1", "data": "p1.jsonl"}], max_seq_len=2048,
                       max_tokens_per_batch=4096)  # lines up to 128 KiB are read
    proc = run_train(cfg, "--dry-run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


@pytest.fixture
def model_copy(tmp_path, task_model):
    import shutil

    shutil.copytree(task_model, tmp_path / "model")


@pytest.mark.parametrize("line, message", [
    ('{"messages": [{"role": "user", "content": "caf\xe9"}]}'.encode("latin-1"), "not UTF-8"),
    (b"[" * 100_000, "nested too deeply"),
    (b'{"messages": [{"role": "hacker", "content": "x"}, {"role": "assistant", "content": "y"}]}', "'hacker'"),
    (b'{"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "y"}]}', "'tool'"),
])
def test_a_broken_line_is_one_error_naming_file_and_line(tmp_path, model_copy, line, message):
    err = _bad(tmp_path, line, blank_lines=3)
    assert "p1.jsonl:9" in err and message in err  # 5 samples, 3 blank lines, then the bad one


def test_an_over_long_line_is_dropped_unread_and_counted(tmp_path, model_copy):
    p = task_file(tmp_path / "p1.jsonl", "reverse", 40)
    huge = {"messages": [{"role": "user", "content": "x " * 5_000_000}, {"role": "assistant", "content": "y"}]}
    with p.open("a") as f:
        f.write(json.dumps(huge) + "\n")
    cfg = write_config(tmp_path, tmp_path / "model", [{"name": "phase1", "data": "p1.jsonl"}])
    started = time.perf_counter()
    proc = run_train(cfg, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "41 samples read" in proc.stdout and "longer_than_max_seq_len 1" in proc.stdout
    print(f"dry run with a 10 MB line: {time.perf_counter() - started:.1f} s")
