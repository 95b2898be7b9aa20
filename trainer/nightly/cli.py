"""``labrador nightly`` and ``labrador runs``: the thin edge over :mod:`labrador.trainer.nightly.night`."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from labrador.validators.exits import CommandError, Exit, UsageError, command, require_extra


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "nightly", help="one night: regenerate data for merged changes, retrain with replay, gate, record",
        description="Find the taxonomy changes on the checked-out main branch since the last promoted model, check "
        "the tree, regenerate data for added and changed leaves (the rest from the generation cache), mix it with "
        "a replay of every earlier night's data, train a new phase on top of the last promoted model, evaluate "
        "(tonight's data, forgetting of earlier nights, the changed leaves' seeds), promote only if the gate "
        "passes, and record the run and a report. A killed night resumes where it stopped. Settings: [nightly] "
        "(its training in [nightly.train], the same keys as `labrador train`'s YAML) and [teacher] in "
        "labrador.toml.")
    p.add_argument("--config", type=Path, metavar="FILE", help="settings file (default: nearest labrador.toml)")
    p.add_argument("--state-dir", type=Path, metavar="DIR",
                   help="registry, data, checkpoints and reports (default: .labrador/ at the repository root)")
    p.add_argument("--taxonomy", type=Path, metavar="DIR", help="taxonomy folder (default: found from here)")
    p.add_argument("--quick", action="store_true",
                   help="the embedded defaults: SmolLM2-135M-Instruct as teacher (quick profile), a 2-layer student "
                   "derived from it, a small CPU training budget (minutes on a laptop); [nightly.train] keys "
                   "still override the budget")
    p.set_defaults(func=run_nightly)
    r = sub.add_parser("runs", help="the nightly run registry: list runs, or explain one",
                       description="Runs of `labrador nightly`, newest first; `labrador runs show ID` explains one.")
    r.add_argument("--state-dir", type=Path, metavar="DIR")
    r.add_argument("--format", choices=("human", "json"), default="human")
    rs = r.add_subparsers(dest="runs_command", metavar="COMMAND")
    show = rs.add_parser("show", help="one run, whole")
    show.add_argument("id")
    show.add_argument("--format", choices=("human", "json"), default="human", dest="show_format")
    show.add_argument("--state-dir", type=Path, metavar="DIR", dest="show_state_dir")
    r.set_defaults(func=run_runs)


def default_state_dir(start: Path) -> Path:
    here = start.resolve()
    for d in (here, *here.parents):
        if (d / ".git").exists():
            return d / ".labrador"
    return here / ".labrador"


@command("nightly")
def run_nightly(args: argparse.Namespace) -> int:
    from labrador.validators.config import find_config, load_config
    from labrador.validators.settings import ConfigError
    from labrador.validators.tree import find_taxonomy

    from ..evaluation.settings import load_evaluate
    from ..teachers.config import load_teacher
    from .night import Night, NightError, run_night
    from .settings import load_nightly

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    taxonomy = args.taxonomy or find_taxonomy(Path("."))
    path = args.config if args.config is not None else find_config(taxonomy)
    try:
        checker = load_config(path)
        settings = load_nightly(path, quick=args.quick)
        evaluate = load_evaluate(path, quick=args.quick)
        teacher = load_teacher(path, spec="embedded" if args.quick else None)
        if not teacher.spec:
            raise ConfigError("no teacher for the nightly job: set `spec` under [teacher] in labrador.toml (or "
                              "LABRADOR_TEACHER), or run `labrador nightly --quick` (the embedded teacher)")
        state = args.state_dir or default_state_dir(taxonomy)
        state.mkdir(parents=True, exist_ok=True)
        free_gb = shutil.disk_usage(state).free / 1e9
        if free_gb < 2:
            raise ConfigError(f"{state}: only {free_gb:.1f} GB free; a night's data and checkpoints need more "
                              "(free some space or pass --state-dir)")
        require_extra("train")
    except (ConfigError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    out = Console(highlight=False)
    night = Night(taxonomy, state, settings, teacher, checker, say=lambda text: err.print(text, markup=False),
                  evaluate=evaluate, config=path)
    try:
        record = run_night(night)
    except (NightError, RuntimeError, OSError) as exc:  # a lock held by a live night, an unreadable registry
        raise CommandError(str(exc)) from None
    print_summary(out, record)
    return Exit.OK if record["status"] in ("promoted", "no-changes") else Exit.FAILED


def print_summary(console: Console, record: dict) -> None:
    """The night's table, then its paths on lines of their own: a path is never cut to fit a column."""
    console.print(summary_table(record))
    for key, label in (("model", "model"), ("card", "model card"), ("report", "report")):
        if record.get(key):
            console.print(f"{label}: {record[key]}", soft_wrap=True, markup=False)


def summary_table(record: dict) -> Table:
    t = Table(title=f"{record['id']}: {record['status']}", show_header=False)
    t.add_column("what", no_wrap=True)
    t.add_column("value", overflow="fold")
    m = record.get("metrics") or {}
    rows = [("why", record.get("reason") or ""), ("taxonomy commit", record["taxonomy_commit"][:12]),
            ("parent", record.get("parent") or "—"),
            ("leaves regenerated", str(len(record.get("leaves_regenerated", [])))),
            ("leaves removed", str(len(record.get("leaves_removed", []))))]
    night = record.get("samples", {}).get("night")
    if night:
        rows.append(("samples", f"{night['new']} new, {night['replayed']} replayed"))
    hl = m.get("heldout_loss", {})
    if hl:
        n = (m.get("sizes") or {}).get("tonight")
        rows.append(("held-out loss tonight", f"{_n3(hl.get('tonight'))} (parent {_n3(hl.get('tonight_parent'))}"
                     + (f"; n = {n}" if n is not None else "") + ")"))
    if m.get("forgetting"):
        rows.append(("forgetting", ", ".join(f"{k} {v:+.3f}" for k, v in m["forgetting"].items() if v is not None)))
    from .report import heldout_headline

    headline = heldout_headline(record)
    if headline:
        rows.append(("held-out seeds", headline))
    branch = record.get("branch_eval")
    if branch:
        from collections import Counter

        counts = Counter(v["verdict"] for v in branch["leaves"].values())
        rows.append(("judged leaves", ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items())) +
                     f"; judge errors {branch['judge_error_rate']:.0%}"))
    for k, v in rows:
        t.add_row(k, str(v))
    return t


def _n3(v: object) -> str:
    return f"{v:.3f}" if isinstance(v, int | float) else "—"


@command("runs")
def run_runs(args: argparse.Namespace) -> int:
    from .registry import Registry, RegistryError

    state = getattr(args, "show_state_dir", None) or args.state_dir or default_state_dir(Path("."))
    db = state / "registry.db"
    if not db.is_file():
        Console(stderr=True).print(f"no runs yet ({db} does not exist)")
        return Exit.OK if args.runs_command is None else Exit.USAGE
    try:
        runs = Registry(db).runs()
    except RegistryError as exc:
        raise CommandError(str(exc)) from None
    if args.runs_command == "show":
        run = next((r for r in runs if r["id"] == args.id), None)
        if run is None:
            raise UsageError(f"no run {args.id!r}; `labrador runs` lists them")
        if args.show_format == "json" or args.format == "json":
            print(json.dumps(run, indent=1, sort_keys=True))
        else:
            print_summary(Console(highlight=False), run)
        return Exit.OK
    if args.format == "json":
        json.dump(runs, sys.stdout, indent=1, sort_keys=True)
        print()
        return Exit.OK
    t = Table(title=f"nightly runs ({db})")
    for col in ("id", "status", "commit", "parent", "leaves"):  # identifiers: never cut
        t.add_column(col, no_wrap=True)
    t.add_column("reason", overflow="fold", ratio=1)
    for r in runs:
        removed = len(r.get("leaves_removed", []))
        leaves = f"{len(r.get('leaves_regenerated', []))} new" + (f", {removed} gone" if removed else "")
        t.add_row(r["id"], r["status"], r["taxonomy_commit"][:12], r.get("parent") or "—", leaves,
                  (r.get("reason") or "")[:80])
    Console().print(t)
    return Exit.OK
