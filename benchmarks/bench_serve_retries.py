"""Schema retries against a server that ignores ``response_format``: ``transformers serve`` with the embedded
model (SmolLM2-135M-Instruct, pulled once), the freeform-pipeline leaves of the starting taxonomy, the quick
profile with its judges on (so every parsed prompt kind is asked: questions and verdicts).

Two runs over the same leaves, each into its own fresh output folder: ``parse_retries = 0`` (what the prompt's
words alone give: the drop rate before retries) and ``parse_retries = 2`` (the default: after retries).
Reported per run: schema-carrying requests, replies lost to their format (``parse_error`` +
``judge_unparseable`` + ``truncated``), that as a rate of the schema requests, the retries used, samples kept
and the wall time.

    .venv/bin/python benchmarks/bench_serve_retries.py [--leaves 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

FORMAT_DROPS = ("parse_error", "judge_unparseable", "truncated")


def _run(url: str, retries: int, leaves: list[str], out: Path) -> dict:
    from labrador.trainer.sdg import Limits, generate, prepare_leaves
    from labrador.trainer.teachers import make_teacher
    from labrador.validators import Config

    taxonomy = ROOT / "taxonomy"
    inputs, _ = prepare_leaves(taxonomy, Config(), leaves)
    teacher = make_teacher(url, max_concurrency=4)
    limits = replace(Limits.profile("quick", judges=True), parse_retries=retries)
    started = time.perf_counter()
    results = asyncio.run(generate(inputs, teacher, out, limits=limits, close_teacher=True))
    seconds = time.perf_counter() - started
    steps = [s for r in results for s in r.steps]
    schema_requests = sum(s["requests"] for s in steps if s.get("structured"))
    lost = sum(r.dropped.get(k, 0) for r in results for k in FORMAT_DROPS)
    return {"parse_retries": retries, "schema_requests": schema_requests, "format_drops": lost,
            "format_drop_rate": round(lost / schema_requests, 3) if schema_requests else None,
            "retries_used": sum(r.schema_retries for r in results), "kept": sum(r.kept for r in results),
            "leaves_with_samples": sum(1 for r in results if r.kept), "leaves": len(results),
            "modes": sorted({r.structured for r in results}), "seconds": round(seconds, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leaves", type=int, default=5, help="freeform-pipeline leaves used (default 5: all of them)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()

    from tinymodel import can_serve, serve_model, wait_until_served

    from labrador.trainer.models.catalogue import DEFAULT
    from labrador.trainer.models.store import models_root

    if not can_serve():
        print("transformers serve is not available here (needs fastapi and uvicorn)", file=sys.stderr)
        return 2
    model = models_root() / DEFAULT
    if not model.is_dir():
        print(f"{DEFAULT} is not pulled: run `labrador models pull`", file=sys.stderr)
        return 2
    free = sorted(p.parent.relative_to(ROOT / "taxonomy").as_posix()
                  for p in (ROOT / "taxonomy").glob("*_skills/**/qna.yaml") if "/grounded/" not in p.as_posix())
    leaves = free[: args.leaves]
    with tempfile.TemporaryDirectory() as tmp, serve_model(model, Path(tmp)) as (proc, url, log):
        wait_until_served(proc, url, log, seconds=300)
        runs = [_run(url, retries, leaves, Path(tmp) / f"out{retries}") for retries in (0, 2)]
    report = {"machine": platform.platform(), "server": "transformers serve (ignores response_format)",
              "teacher": DEFAULT, "leaves": leaves, "runs": runs}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
