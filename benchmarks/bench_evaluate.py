"""The judged per-leaf evaluation's cost: a tiny model (and an untrained twin as the baseline) answering
``--questions`` seed-style questions spread over different numbers of leaves, judged by the embedded teacher
(SmolLM2-135M-Instruct, pulled once). Reported per leaf count: wall time of the answers (both models), of
the judging, seconds per question, and the judge error rate. The cost should follow the number of questions,
not of leaves (each leaf is only a grouping of questions).

    .venv/bin/python benchmarks/bench_evaluate.py [--questions 100] [--leaves 2,20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

WORDS = "red green blue cat dog fish sun moon star tree rock sand bird frog leaf rain".split()


def questions(total: int, leaves: int) -> list:
    from labrador.trainer.evaluation.questions import Question

    rng = random.Random(0)
    out = []
    for i in range(total):
        ws = [rng.choice(WORDS) for _ in range(rng.randint(3, 6))]
        out.append(Question(f"bench/leaf_{i % leaves:03d}", f"reverse: {' '.join(ws)}", " ".join(reversed(ws))))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--leaves", default="2,20", help="comma-separated leaf counts (default 2,20)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from tinymodel import build_tiny_model
    from trainkit import TASK_CORPUS

    from labrador.trainer.evaluation.run import evaluate_branch
    from labrador.trainer.evaluation.settings import EvaluateSettings
    from labrador.trainer.teachers import make_teacher

    settings = EvaluateSettings(max_new_tokens=args.max_new_tokens)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "model", corpus=TASK_CORPUS, seed=1)
        baseline = build_tiny_model(Path(tmp) / "baseline", corpus=TASK_CORPUS, seed=2)
        for leaves in [int(x) for x in args.leaves.split(",")]:
            stamps: dict[str, float] = {}
            started = time.perf_counter()

            def progress(stage: str, done: int, total: int, stamps: dict[str, float] = stamps) -> None:
                stamps.setdefault(stage, time.perf_counter())  # first event of a stage
                if done == total:
                    stamps[stage + "_end"] = time.perf_counter()

            judge = make_teacher("embedded", batch_size=8)
            result, _ = evaluate_branch(str(model), str(baseline), judge, questions(args.questions, leaves),
                                        settings, progress=progress)
            total = time.perf_counter() - started
            answers_end = stamps.get("baseline_end", started)
            runs.append({"leaves": leaves, "questions": args.questions, "seconds": round(total, 1),
                         "answer_seconds": round(answers_end - started, 1),
                         "judge_seconds": round(stamps.get("judge_end", answers_end) - answers_end, 1),
                         "seconds_per_question": round(total / args.questions, 2),
                         "judge_error_rate": result["judge_error_rate"]})
            print(json.dumps(runs[-1]), file=sys.stderr)
    report = {"machine": f"{platform.machine()}, {platform.platform()}", "judge": "embedded (SmolLM2-135M)",
              "model": "tiny Llama (2 layers, hidden 64)", "max_new_tokens": args.max_new_tokens, "runs": runs}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
