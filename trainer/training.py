"""Training from a :class:`~labrador.trainer.train.config.TrainConfig`: the one entry point (:func:`train`) that
``labrador train`` and the nightly job both call, and the ``labrador train --config FILE [--resume] [--dry-run]``
command over it.

Why here, above ``train/`` and ``distill/``: distillation is a loss step plugged into the training loop, so the
place that wires the two sits over both (the loop knows no teacher). Configuration and data errors are one
line on stderr (exit 2) and come before any weights load.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from labrador.validators.exits import CommandError, Exit, UsageError, command, require_extra

if TYPE_CHECKING:  # imported when used: `labrador --help` and `labrador check` load this module to register
    from .train.config import TrainConfig



def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model on phase files (LAB phases with replay; packed; resumable)",
        description="Train a Hugging Face causal LM on the phase files `labrador generate` writes, phase after "
        "phase (each starts from the previous one's final weights), with padding-free packing, loss on the "
        "replies only, held-out evaluation and forgetting after every phase. Runs on one CPU or GPU as is; "
        "several GPUs or nodes with `accelerate launch` (configs in trainer/configs/). Needs the [train] extra.",
        epilog="Outputs in output_dir: <phase>/final/ (Hugging Face folder), metrics.jsonl, summary.json, loss.png, "
        "checkpoints/.")
    p.add_argument("--config", type=Path, required=True, metavar="FILE", help="training config (YAML)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in output_dir from its newest checkpoint (same settings required)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (samples, tokens, steps, micro-batches, memory) without loading weights")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)


def checked(config: TrainConfig) -> Any:
    """Check everything that can be checked before weights load (inputs; the distillation teachers and their
    tokenizers); returns the loss factory for the loop (``None``: plain supervised fine-tuning)."""
    from .train.config import check_inputs

    check_inputs(config)
    if config.distill is None:
        return None
    from .distill.config import check_distill
    from .distill.step import make_loss_factory

    check_distill(config, config.distill)
    return make_loss_factory(config.distill)


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train every phase of ``config`` (checked first; distillation on when it has a ``distill`` block)."""
    from .train.loop import train as run_phases

    factory = checked(config)
    return run_phases(config, resume=resume, progress=progress, loss_factory=factory)


@command("train")
def run_train(args: argparse.Namespace) -> int:
    require_extra("train")
    from labrador.validators.locks import Busy

    from .distill.cache import CacheError
    from .train.config import TrainConfigError, TrainFailed, load_config
    from .train.data import DataError

    try:
        config = load_config(args.config)
        if args.dry_run:
            checked(config)
            return dry_run(config)
        summary = train(config, resume=args.resume, progress=not args.quiet)
    except (TrainConfigError, DataError, CacheError) as exc:
        if int(os.environ.get("RANK", "0") or 0) != 0:  # a launched run's ranks all refuse; one says why
            return Exit.USAGE
        raise UsageError(str(exc)) from None
    except (TrainFailed, Busy) as exc:
        raise CommandError(str(exc)) from None
    if summary:
        out = Console(highlight=False)
        out.print(heldout_table(summary))
        out.print(f"final model: {summary['phases'][config.phases[-1].name]['final']}")
        out.print(f"metrics: {Path(config.output_dir) / 'metrics.jsonl'}  plot: {Path(config.output_dir) / 'loss.png'}")
    return Exit.OK


def heldout_table(summary: dict) -> Table:
    names = list(summary["heldout_loss"])
    t = Table(title="held-out loss (rows: after phase; in brackets: forgetting)")
    t.add_column("after")
    for n in names:
        t.add_column(n, justify="right")
    for after in names:
        row = summary["heldout_loss"][after]
        cells = []
        for of in names:
            if of in row:
                f = summary["forgetting"][after].get(of, 0.0)
                cells.append(f"{row[of]:.4f}" + (f" ({f:+.4f})" if of != after else ""))
            else:
                cells.append("")
        t.add_row(after, *cells)
    return t


def dry_run(config) -> int:
    import torch

    from .train.prepare import memory_estimate, param_count, plan_rows, prepare

    prep = prepare(config)
    params, cfg = param_count(config.model)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    mem = memory_estimate(params, cfg, config, device)
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"plan for {config.source}: {'packed' if config.packing else 'padded'} micro-batches of at most "
              f"{config.max_tokens_per_batch} tokens, max_seq_len {config.max_seq_len}")
    for r in plan_rows(prep):
        lo, hi = r["micro_batches_per_step"]
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(r["dropped"].items())) or "none"
        out.print(f"  {r['phase']}: {r['samples_read']} samples read, {r['train_samples']} train, "
                  f"{r['heldout_samples']} held out, dropped: {dropped}")
        out.print(f"    {r['train_tokens']} tokens ({r['loss_tokens']} with loss) per epoch; {r['optimizer_steps']} "
                  f"optimizer steps, {lo if lo == hi else f'{lo}-{hi}'} micro-batches per step, "
                  f"{r['padding_tokens']} padding tokens")
    out.print(f"model: {config.model}: {params / 1e6:.1f} M parameters; memory on {device} (one process): "
              + ", ".join(f"{k} {v:.2f} GiB" for k, v in mem.items()))
    return Exit.OK


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - `python -m labrador.trainer.training`
    parser = argparse.ArgumentParser(prog="labrador")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover - under torchrun and accelerate launch
    sys.exit(main())
