"""Distillation inside `labrador train` on tiny CPU models: KD beats plain SFT for the same steps, offline
top-k lands near online, DAE follows the expert on the domain and the reference elsewhere, teachers get no
gradients, the tokenizer check names both models, the top-k cache resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
from tinymodel import build_tiny_model  # noqa: E402
from trainkit import TASK_CORPUS, task_file, write_config  # noqa: E402

from labrador.trainer.distill.step import make_loss_factory  # noqa: E402
from labrador.trainer.train.config import load_config  # noqa: E402
from labrador.trainer.train.loop import train  # noqa: E402

LABRADOR = str(Path(sys.executable).with_name("labrador"))


def fit(folder: Path, model: Path, data: Path, *, epochs: int, batch: int = 16, heldout: float = 0.25,
        distill: dict | None = None, **top) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    extra = {"distill": distill} if distill else {}
    cfg = load_config(write_config(folder, model, [{"name": "p", "data": str(data), "epochs": epochs, "lr": 3.0e-3,
                                                    "effective_batch": batch}], heldout_fraction=heldout,
                                   **extra, **top))
    factory = make_loss_factory(cfg.distill) if distill else None
    return train(cfg, progress=False, loss_factory=factory)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A teacher trained on 'reverse', a smaller untrained student with the same tokenizer, a small data set."""
    w = tmp_path_factory.mktemp("kd")
    teacher0 = build_tiny_model(w / "t0", corpus=TASK_CORPUS, hidden=64, layers=2, seed=1)
    student = build_tiny_model(w / "s0", corpus=TASK_CORPUS, hidden=48, layers=1, heads=2, seed=2)
    fit(w / "t", teacher0, task_file(w / "teach.jsonl", "reverse", 400, seed=5), epochs=6, heldout=0.1)
    return {"w": w, "teacher": w / "t/out/p/final", "student": student,
            "small": task_file(w / "small.jsonl", "reverse", 60, seed=6)}


def test_kd_student_beats_sft_student_and_offline_topk_lands_near_online(world):
    w = world["w"]
    sft = fit(w / "sft", world["student"], world["small"], epochs=10)["heldout_loss"]["p"]["p"]
    kd = fit(w / "kd", world["student"], world["small"], epochs=10,
             distill={"teacher_model": str(world["teacher"]), "lambda": 0.8})["heldout_loss"]["p"]["p"]
    cfg = write_config(w / "off", world["student"], [{"name": "p", "data": str(world["small"]), "epochs": 10,
                                                      "lr": 3.0e-3, "effective_batch": 16}], heldout_fraction=0.25,
                       distill={"teacher_model": str(world["teacher"]), "teacher_cache": str(w / "cache"),
                                "lambda": 0.8})
    proc = subprocess.run([LABRADOR, "distill", "cache", "--config", str(cfg), "--top-k", "16", "-q"],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr
    assert "96 bytes per response token" in proc.stdout
    proc = subprocess.run([LABRADOR, "train", "--config", str(cfg), "-q"], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr
    offline = json.loads((w / "off/out/summary.json").read_text())["heldout_loss"]["p"]["p"]
    print(f"held-out loss after 10 epochs: SFT {sft:.3f}, online KD {kd:.3f}, offline top-16 KD {offline:.3f}")
    assert kd < sft - 0.05
    assert abs(offline - kd) < 0.1
    rows = [json.loads(x) for x in (w / "off/out/metrics.jsonl").read_text().splitlines()]
    assert all(r["loss_pred"] > 0 and r["loss_ce"] > 0 for r in rows)
    assert all(r["loss"] == pytest.approx(0.2 * r["loss_ce"] + 0.8 * r["loss_pred"], rel=1e-6) for r in rows)


def test_attention_distillation_logs_its_term_and_teacher_gets_no_gradient(world, tmp_path):
    from labrador.trainer.train.batch import collate_packed
    from labrador.trainer.train.prepare import prepare

    cfg = load_config(write_config(tmp_path, world["student"], [{"name": "p", "data": str(world["small"])}],
                                   distill={"teacher_model": str(world["teacher"]), "lambda": 0.5, "attention": 1.0}))
    dc = cfg.distill

    class Acc:
        device = torch.device("cpu")

    step = make_loss_factory(dc)(cfg, Acc())
    from labrador.trainer.train.loop import load_model

    student = load_model(str(world["student"]), cfg, torch.device("cpu"))
    assert student.config._attn_implementation == "eager"
    prep = prepare(cfg)
    out = step(student, collate_packed(prep.data[0].train[:4]))
    out.total.backward()
    assert out.terms["loss_attn"] > 0 and out.terms["loss_pred"] > 0
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)
    teacher = step.__closure__  # the teacher lives in the factory's closure
    models = [c.cell_contents for c in teacher if isinstance(c.cell_contents, dict)]
    t = next(m for d in models for m in d.values())
    assert not t.training and all(p.grad is None and not p.requires_grad for p in t.parameters())


def test_dae_student_follows_the_expert_on_the_domain_and_the_reference_elsewhere(world, tmp_path):
    from transformers import AutoModelForCausalLM

    from labrador.trainer.distill.losses import prediction_kl
    from labrador.trainer.train.batch import collate_packed, labels_from_targets
    from labrador.trainer.train.prepare import prepare

    ref0 = build_tiny_model(tmp_path / "r0", corpus=TASK_CORPUS, hidden=64, layers=2, seed=3)
    fit(tmp_path / "r", ref0, task_file(tmp_path / "upper.jsonl", "upper", 400, seed=7), epochs=6, heldout=0.1)
    expert, reference = world["teacher"], tmp_path / "r/out/p/final"
    mixed = task_file(tmp_path / "mixed.jsonl", ["reverse", "upper"], 120, seed=8)
    students = {}
    for name, distill in {
        "dae": {"dae": {"expert": str(expert), "reference": str(reference),
                        "domain": ["compositional_skills/reverse"]}, "lambda": 1.0},
        "expert_only": {"teacher_model": str(expert), "lambda": 1.0},
        "reference_only": {"teacher_model": str(reference), "lambda": 1.0},
    }.items():
        fit(tmp_path / name, world["student"], mixed, epochs=6, heldout=0.2, distill=distill)
        students[name] = AutoModelForCausalLM.from_pretrained(tmp_path / name / "out/p/final").eval()
    teachers = {n: AutoModelForCausalLM.from_pretrained(p).eval() for n, p in
                (("expert", expert), ("reference", reference))}
    prep = prepare(load_config(tmp_path / "dae" / "train.yaml"))
    held = prep.data[0].heldout
    by_task = {t: [s for s in held if s.leaf.endswith(t)] for t in ("reverse", "upper")}

    def kl(student, teacher, samples):
        b = collate_packed(samples)
        with torch.no_grad():
            s = student(input_ids=b["input_ids"], position_ids=b["position_ids"]).logits
            t = teacher(input_ids=b["input_ids"], position_ids=b["position_ids"]).logits
        return float(prediction_kl(s, t, labels_from_targets(b["targets"])))

    on_a = {n: kl(m, teachers["expert"], by_task["reverse"]) for n, m in students.items()}
    on_b = {n: kl(m, teachers["reference"], by_task["upper"]) for n, m in students.items()}
    print(f"KL to the expert on domain samples: {on_a}; KL to the reference elsewhere: {on_b}")
    assert on_a["dae"] < on_a["reference_only"]
    assert on_b["dae"] < on_b["expert_only"]
    assert on_a["dae"] + on_b["dae"] < min(on_a[n] + on_b[n] for n in ("expert_only", "reference_only"))


def test_teacher_with_another_tokenizer_is_refused_naming_both(world, tmp_path):
    other = build_tiny_model(tmp_path / "other", hidden=32, layers=1, heads=2)  # default corpus: other vocabulary
    task_file(tmp_path / "p.jsonl", "reverse", 20)
    cfg = write_config(tmp_path, world["student"], [{"name": "p", "data": "p.jsonl"}],
                       distill={"teacher_model": str(other)})
    proc = subprocess.run([LABRADOR, "train", "--config", str(cfg), "-q"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(world["student"]) in proc.stderr and str(other) in proc.stderr and "tokenizer" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_topk_cache_reuses_by_content_and_ignores_half_written_shards(world, tmp_path):
    from labrador.trainer.distill.cache import TopKCache, build_cache
    from labrador.trainer.distill.step import load_frozen_model
    from labrador.trainer.train.prepare import prepare

    cfg = load_config(write_config(tmp_path, world["student"], [{"name": "p", "data": str(world["small"])}]))
    samples = prepare(cfg).data[0].train
    teacher = load_frozen_model(str(world["teacher"]), torch.device("cpu"))
    root = tmp_path / "cache"
    first = build_cache(root, samples[:20], teacher, top_k=8, temperature=1.0, teacher_name="t", max_tokens=256,
                        device=torch.device("cpu"), shard_samples=8)
    assert first["computed"] == 20 and len(list((root / "shards").glob("shard-*"))) == 3
    (root / "shards" / ".shard-00003.tmp").write_bytes(b"half")  # a build killed mid-write
    second = build_cache(root, samples, teacher, top_k=8, temperature=1.0, teacher_name="t", max_tokens=256,
                         device=torch.device("cpu"), shard_samples=8)
    assert second["reused"] == 20 and second["computed"] == len(samples) - 20
    assert not (root / "shards" / ".shard-00003.tmp").exists()
    cache = TopKCache(root)
    assert len(cache) == len(samples) and cache.k == 8
    ids, lps = cache.get(samples[3].key)
    assert ids.shape == (samples[3].loss_tokens, 8) and lps.dtype == torch.bfloat16
    assert torch.all(lps[:, :-1] >= lps[:, 1:])  # sorted top-k
    from labrador.trainer.distill.cache import CacheError

    with pytest.raises(CacheError, match="k=8"):
        build_cache(root, samples, teacher, top_k=4, temperature=1.0, teacher_name="t", max_tokens=256,
                    device=torch.device("cpu"))
