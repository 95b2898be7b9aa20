"""Constrained vs free decoding on the transformers backend: the cost of xgrammar's mask, in one run.

The same requests (the haiku leaf's kind of question-writing prompt, a batch of ``--rows`` seeds, temperature
1.0) go to the embedded teacher (SmolLM2-135M-Instruct, pulled once) twice: once free, once carrying the
``{"questions": [3 strings]}`` schema the question prompts declare. Reported: decode steps per second of each
(one step = one token for every row of the batch; counted at the sampler, so both modes are measured the same
way whatever length their replies end at: a JSON reply that closes early ends its row, not the batch), their
ratio (target >= 0.87, i.e. at most 15 % overhead), the time spent in the grammar mask itself, the grammar
compile time, and how many replies of each parse as valid JSON of the schema.

    .venv/bin/python benchmarks/bench_structured.py [--rows 8] [--max-tokens 160] [--repeat 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labrador.trainer.teachers.base import Request, schema_problem  # noqa: E402

SCHEMA = {"name": "freeform_questions", "schema": {
    "type": "object", "additionalProperties": False, "required": ["questions"],
    "properties": {"questions": {"type": "array", "minItems": 3, "maxItems": 3,
                                 "items": {"type": "string", "minLength": 10, "maxLength": 200}}}}}
SYSTEM = "You write diverse, self-contained tasks for a training set."
USER = ("The skill: writing haiku on a requested theme.\nAn example task: Write a haiku about autumn rain.\n"
        'Write 3 new tasks for this skill. Reply with JSON only: {"questions": ["...", "...", "..."]}')


async def _run(teacher, requests: list[Request]) -> tuple[float, list[str]]:
    started = time.perf_counter()
    replies = await asyncio.gather(*(teacher.complete(r) for r in requests))
    return time.perf_counter() - started, [r[0] for r in replies]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=8, help="requests per batch (distinct seeds)")
    p.add_argument("--max-tokens", type=int, default=160)
    p.add_argument("--repeat", type=int, default=2, help="timed rounds of each mode (alternated)")
    p.add_argument("--model", type=Path, help="a model folder (default: the embedded teacher, pulled once)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    import torch

    from labrador.trainer.models.store import pull
    from labrador.trainer.teachers import local_transformers as lt
    from labrador.trainer.teachers.local_transformers import TransformersTeacher

    counters = {"steps": 0, "mask_s": 0.0}
    sample, mask = lt._RowSampler.__call__, lt._GrammarMask.__call__

    def counted_sample(self, input_ids, scores):  # type: ignore[no-untyped-def]
        counters["steps"] += 1
        return sample(self, input_ids, scores)

    def timed_mask(self, input_ids, scores):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        out = mask(self, input_ids, scores)
        counters["mask_s"] += time.perf_counter() - started
        return out

    lt._RowSampler.__call__, lt._GrammarMask.__call__ = counted_sample, timed_mask  # measuring, not changing

    model = args.model or pull("smollm2-135m-instruct")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    teacher = TransformersTeacher(model, batch_size=args.rows, max_wait_s=0.05, device=device)

    def requests(schema: dict | None, round_: int) -> list[Request]:
        return [Request(messages=(("system", SYSTEM), ("user", USER)), max_tokens=args.max_tokens, temperature=1.0,
                        seed=1000 * round_ + i, schema=schema or "") for i in range(args.rows)]

    asyncio.run(_run(teacher, requests(None, 99)[:2]))  # warm up weights and kernels
    compile_before = teacher.compile_seconds
    asyncio.run(_run(teacher, requests(SCHEMA, 98)[:1]))  # compiles the grammar once
    compile_s = teacher.compile_seconds - compile_before
    totals = {"free": [0.0, 0, 0, 0.0], "constrained": [0.0, 0, 0, 0.0]}  # seconds, steps, valid, mask s
    for round_ in range(args.repeat):
        for mode in ("free", "constrained") if round_ % 2 == 0 else ("constrained", "free"):
            batch = requests(SCHEMA if mode == "constrained" else None, round_)
            counters.update(steps=0, mask_s=0.0)
            seconds, texts = asyncio.run(_run(teacher, batch))
            canonical = Request(messages=(("user", "x"),), schema=SCHEMA).schema
            totals[mode][0] += seconds
            totals[mode][1] += counters["steps"]
            totals[mode][2] += sum(schema_problem(canonical, t) is None for t in texts)
            totals[mode][3] += counters["mask_s"]
    asyncio.run(teacher.aclose())
    rate = {m: v[1] / v[0] for m, v in totals.items()}
    report = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "model": str(model), "device": device,
        "rows": args.rows, "max_tokens": args.max_tokens, "repeat": args.repeat,
        "grammar_compile_s": round(compile_s, 4),
        **{f"{m}_steps_per_s": round(rate[m], 2) for m in rate},
        "mask_share_of_constrained_time": round(totals["constrained"][3] / totals["constrained"][0], 4),
        **{f"{m}_valid_json": f"{totals[m][2]}/{args.rows * args.repeat}" for m in totals},
        "ratio_constrained_over_free": round(rate["constrained"] / rate["free"], 3),
        "target_ratio": 0.87,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
