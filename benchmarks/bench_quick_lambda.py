"""Distillation weight for the quick night (issue 30): on one night's own mix, train the embedded model with
λ = 0 (reply loss only) and λ = 0.5 (half KL to the embedded model itself: a pull toward where it started),
then measure each candidate against the base on that night's held-out seeds (`ref_nll`, `rouge_l`) and drift.

    .venv/bin/labrador nightly --quick                                   # makes .labrador/runs/night-0001
    .venv/bin/python benchmarks/bench_quick_lambda.py .labrador/runs/night-0001 [--lambdas 0,0.5]

Every λ trains the quick night's own config (``QUICK_TRAIN`` in trainer/nightly/settings.py) from the same
start on the same data with the same seed; only λ differs. The base model's numbers are the anchor, measured
in the same run. Prints one table and writes ``lambda.json`` beside the night's files.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from labrador.trainer.evaluation.metrics import LoadedModel, drift_rows, measure
    from labrador.trainer.models.store import pull
    from labrador.trainer.nightly.settings import load_nightly
    from labrador.trainer.training import train
    from labrador.validators import Config, check_file
    from labrador.validators.holdout import heldout_pairs

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a quick night's runs/<id> folder (its mix.jsonl and steps/holdout.json)")
    ap.add_argument("--lambdas", default="0,0.5")
    ap.add_argument("--taxonomy", type=Path, default=ROOT / "taxonomy")
    args = ap.parse_args()
    held = json.loads((args.run / "steps" / "holdout.json").read_text())["leaves"]
    items = []
    for leaf, ids in sorted(held.items()):
        if ids:
            report = check_file(f"{leaf}/qna.yaml", (args.taxonomy / leaf / "qna.yaml").read_bytes(), Config())
            items += heldout_pairs(leaf, report.data, ids)
    base = str(pull())
    drift = drift_rows(base)
    rows = {"base": measure(LoadedModel(base), items, ("ref_nll", "rouge_l"), 64, drift)}
    seconds = {}
    settings = load_nightly(None, quick=True)
    for lam in (float(x) for x in args.lambdas.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            config = settings.train_config(base, Path(tmp) / "out", args.run / "mix.jsonl", source="bench")
            config = replace(config, distill=None) if lam == 0 else replace(
                config, distill=replace(config.distill, teacher_model=base, lam=lam))
            t0 = time.perf_counter()
            summary = train(config, progress=False)
            seconds[lam] = time.perf_counter() - t0
            final = summary["phases"]["night"]["final"]
            rows[f"λ={lam:g}"] = measure(LoadedModel(final), items, ("ref_nll", "rouge_l"), 64, drift)
    print(f"{len(items)} held-out pairs of {len({i.leaf for i in items})} leaves; base {base}")
    print(f"{'model':<8} {'ref_nll':>8} {'rouge_l':>8} {'drift':>7} {'better leaves':>14} {'train s':>8}")
    b = rows["base"]["leaves"]
    for name, r in rows.items():
        leaves = r["leaves"]
        nll = [v["ref_nll"] for v in leaves.values() if v["ref_nll"] is not None]
        rouge = [v["rouge_l"] for v in leaves.values() if v["rouge_l"] is not None]
        better = sum(1 for leaf, v in leaves.items() if v["ref_nll"] is not None and v["ref_nll"] < b[leaf]["ref_nll"])
        lam = None if name == "base" else float(name.split("=")[1])
        print(f"{name:<8} {sum(nll) / len(nll):8.3f} {sum(rouge) / len(rouge):8.3f} {r['drift_nll']:7.3f} "
              f"{better:>8}/{len(leaves):<5} {'' if lam is None else f'{seconds[lam]:8.0f}'}")
    (args.run / "lambda.json").write_text(json.dumps({"rows": rows, "seconds": {str(k): v for k, v in
                                                                                  seconds.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
