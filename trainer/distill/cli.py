"""``labrador distill cache --config FILE --top-k 64``: run the teacher once over every phase's training
samples and store its top-k log-probabilities per response position (resumable; reuses what is cached)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from labrador.validators.exits import Exit, UsageError, command, require_extra


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="distillation tools (offline teacher cache)",
                       description="Distillation itself runs inside `labrador train` (the `distill:` block of the "
                       "training config); this command prepares its offline teacher targets.")
    s = p.add_subparsers(dest="distill_command", metavar="COMMAND", required=True)
    c = s.add_parser("cache", help="store the teacher's top-k log-probs for every training sample",
                     description="Run distill.teacher over the training samples of every phase in the config and "
                     "write its top-k log-probabilities at each response position into distill.teacher_cache "
                     "(safetensors shards; int32 ids + bf16 log-probs: 6·k bytes per response token). Samples "
                     "already cached (by content) are skipped, so a rerun resumes.")
    c.add_argument("--config", type=Path, required=True, metavar="FILE", help="training config with a distill block")
    c.add_argument("--top-k", type=int, default=64, metavar="K", help="log-probs kept per position (default 64)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=run_cache)


@command("distill cache")
def run_cache(args: argparse.Namespace) -> int:
    require_extra("train")
    import torch

    from labrador.trainer.train.config import TrainConfigError, check_inputs, load_config
    from labrador.trainer.train.data import DataError
    from labrador.trainer.train.prepare import prepare

    from .cache import CacheError, build_cache
    from .config import check_distill
    from .step import load_frozen_model

    try:
        if args.top_k < 1:
            raise TrainConfigError("--top-k must be at least 1")
        config = load_config(args.config)
        check_inputs(config)
        dc = config.distill
        if dc is None or not dc.teacher_model or not dc.teacher_cache:
            raise TrainConfigError(f"{config.source}: distill: set both `teacher_model` (the model to run) and "
                                   "`teacher_cache` (where its targets go)")
        check_distill(config, dc, building_cache=True)
        prep = prepare(config)
        samples = [s for d in prep.data for s in d.train]
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        teacher = load_frozen_model(dc.teacher_model, device)
        from rich.progress import Progress

        with Progress(disable=args.quiet, transient=True) as bar:
            task = bar.add_task("teacher top-k", total=len(samples))
            counts = build_cache(Path(dc.teacher_cache), samples, teacher, top_k=min(args.top_k, len(prep.tokenizer)),
                                 temperature=dc.temperature, teacher_name=dc.teacher_model,
                                 max_tokens=config.max_tokens_per_batch, device=device,
                                 progress=lambda n: bar.advance(task, n))
    except (TrainConfigError, DataError, CacheError) as exc:
        raise UsageError(str(exc)) from None
    k = min(args.top_k, len(prep.tokenizer))
    Console(highlight=False).print(
        f"{dc.teacher_cache}: {counts['computed']} samples computed, {counts['reused']} reused, "
        f"{counts['rows']} response positions; {6 * k} bytes per response token (k={k})")
    return Exit.OK
