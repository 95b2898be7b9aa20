"""The ``labrador`` command. Each package adds subcommands through the ``labrador.commands`` entry points,
so the checker (installed alone, without torch) never imports the trainer or the bot."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from . import output
from .cache import CheckCache, default_cache_path
from .checks import REGISTRY
from .config import Config, find_config, load_config
from .exits import CommandError, Exit, UsageError, command, report
from .findings import Finding, Report
from .tree import SelectionError, check_tree, find_taxonomy, repo_root, select_leaves


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--taxonomy", metavar="DIR", type=Path,
                   help="taxonomy folder (default: ./taxonomy if it exists, else the current folder)")
    p.add_argument("--config", metavar="FILE", type=Path,
                   help="settings file (default: the nearest labrador.toml at or above the taxonomy)")
    p.add_argument("--format", choices=("human", "json", "github", "markdown"), default=None,
                   help="output format (default: github inside GitHub Actions, else human); markdown: findings "
                   "as human, previews as GitHub Markdown (what the bot posts)")
    p.add_argument("--no-documents", action="store_true",
                   help="skip resolving knowledge documents (repo, commit, patterns); no network, no git")
    p.add_argument("--no-cache", action="store_true", help="ignore and do not update the verdict cache")
    p.add_argument("-q", "--quiet", action="store_true", help="print findings only, no summary")


def register_validate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check taxonomy leaves (the whole tree, named leaves, or changes)",
                       description="Check qna.yaml leaves: YAML, lint, schema (versions 1-3), semantics, "
                       "attribution and documents. Exit status 1 when any error is found.")
    p.add_argument("paths", nargs="*", type=Path, help="leaf folders or qna.yaml files (default: all)")
    p.add_argument("--base", metavar="REF",
                   help="check only leaves added, modified or renamed since the merge-base of REF and HEAD "
                   "(working tree and untracked files included)")
    p.add_argument("--list-checks", action="store_true", help="list every check with its id and severity")
    _add_common(p)
    p.set_defaults(func=run_validate)


def register_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="the contributor's command: validate what you changed against main",
                       description="Validate the leaves your working tree changed against 'main' (the whole "
                       "tree when there is no main), then run the preview hooks other packages add.")
    p.add_argument("--base", metavar="REF", help="compare against REF instead of main")
    p.add_argument("--all", action="store_true", help="check the whole taxonomy, not only what changed")
    p.add_argument("--preview", action="store_true",
                   help="also generate a few synthetic samples per changed leaf (the configured teacher, else the "
                   "embedded one; needs the [sdg] extra, and [train] for the embedded teacher)")
    _add_common(p)
    p.set_defaults(func=run_check)


def _taxonomy_dir(args: argparse.Namespace) -> Path:
    if args.taxonomy is not None:
        if not args.taxonomy.is_dir():
            raise UsageError(f"taxonomy folder {args.taxonomy} does not exist; pass --taxonomy DIR")
        return args.taxonomy
    return find_taxonomy(Path("."))


def _config(args: argparse.Namespace, taxonomy: Path) -> Config:
    path = args.config if args.config is not None else find_config(taxonomy)
    if args.config is not None and not args.config.is_file():
        raise UsageError(f"config file {args.config} does not exist")
    return load_config(path)  # a ConfigError is a usage error (exits.command)


def _prefix(taxonomy: Path) -> str:
    """How to print taxonomy-relative paths so they are relative to the repository (for annotations)."""
    root = repo_root(taxonomy) or Path.cwd()
    try:
        rel = taxonomy.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        rel = taxonomy.as_posix()
    return "" if rel in ("", ".") else rel + "/"


def _selected(paths: list[Path], taxonomy: Path) -> list[str]:
    try:
        return select_leaves(taxonomy, paths)
    except SelectionError as exc:
        raise UsageError(str(exc)) from None


def _document_checker(config: Config, taxonomy: Path) -> Callable[[Report], list[Finding]]:
    local = repo_root(taxonomy)

    def extra(report: Report) -> list[Finding]:
        if report.branch != "knowledge" or not isinstance(report.data, dict):
            return []
        from .documents import check_documents  # pygit2 is loaded only when a document is checked

        return check_documents(report, config, local)

    return extra


def validate(args: argparse.Namespace, base: str | None
             ) -> tuple[list[Report], list[str], str, list[tuple[str, str]]]:
    taxonomy = _taxonomy_dir(args)
    config = _config(args, taxonomy)
    only: list[str] | None = _selected(args.paths, taxonomy) if getattr(args, "paths", None) else None
    deleted: list[str] = []
    renamed: list[tuple[str, str]] = []
    if base is not None:
        from .changes import ChangeError, changed_leaves

        root = repo_root(taxonomy)
        if root is None:
            raise UsageError(f"--base needs a git repository, and {taxonomy} is not in one")
        sub = taxonomy.resolve().relative_to(root.resolve()).as_posix()
        try:
            changes = changed_leaves(root, base, "" if sub == "." else sub)
        except ChangeError as exc:
            raise UsageError(str(exc)) from exc
        only = changes.changed if only is None else [p for p in only if p in changes.changed]
        deleted, renamed = changes.deleted, changes.renamed
    cache = None if args.no_cache else CheckCache(default_cache_path(taxonomy, config))
    extra = None if args.no_documents else _document_checker(config, taxonomy)
    with _progress(args) as progress:
        reports = check_tree(taxonomy, config, only, cache, extra, progress, require_latest=base is not None)
    if cache is not None:
        cache.save()
    return reports, deleted, _prefix(taxonomy), renamed


class _progress:
    """Checking a large tree: a bar on a terminal, a line every 30 s in a log; nothing with ``--quiet``."""

    def __init__(self, args: argparse.Namespace) -> None:
        from .progress import Progress

        self.bar = Progress("checking leaves", None, show=not args.quiet)

    def __enter__(self) -> Callable[[int, int], None]:
        self.bar.__enter__()
        return lambda done, total: self.bar.update(done, total=total)

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)


def _fmt(args: argparse.Namespace) -> str:
    if args.format:
        return "human" if args.format == "markdown" else args.format  # markdown changes previews only
    return "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "human"


def emit(args: argparse.Namespace, reports: list[Report], deleted: list[str], prefix: str,
         renamed: list[tuple[str, str]] = ()) -> int:
    fmt = _fmt(args)
    if fmt == "json":
        print(output.as_json(reports, prefix, deleted, renamed))
    else:
        text = output.github(reports, prefix) if fmt == "github" else output.human(
            reports, prefix, color=sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
        if text:
            print(text)
        if not args.quiet:
            print(output.summary(reports, deleted, renamed, prefix),
                  file=sys.stderr if fmt == "github" else sys.stdout)
    return Exit.FAILED if any(r.errors for r in reports) else Exit.OK


def list_checks() -> int:
    width = max(len(i) for i in REGISTRY)
    for info in sorted(REGISTRY.values(), key=lambda i: i.id):
        print(f"{info.id:<{width}}  {info.severity:<7}  {info.description}")
    return Exit.OK


@command("validate")
def run_validate(args: argparse.Namespace) -> int:
    if args.list_checks:
        return list_checks()
    reports, deleted, prefix, renamed = validate(args, args.base)
    return emit(args, reports, deleted, prefix, renamed)


@command("check")
def run_check(args: argparse.Namespace) -> int:
    base = args.base
    if base is None and not args.all:
        from .changes import default_base

        root = repo_root(_taxonomy_dir(args))
        base = default_base(root) if root is not None else None
    reports, deleted, prefix, renamed = validate(args, base)
    if base is None and not args.all and not args.quiet and _fmt(args) == "human":
        print("no 'main' branch found: checked the whole taxonomy")
    elif base is not None and not reports and not deleted and not renamed and not args.quiet \
            and _fmt(args) == "human":
        from .changes import same_commit

        root = repo_root(_taxonomy_dir(args))
        if root is not None and same_commit(root, base):
            print(f"HEAD is the same commit as {base}: only uncommitted changes could differ, and there are none, "
                  "so nothing was checked; `labrador check --all` checks the whole taxonomy, --base REF compares "
                  "with another revision")
        else:
            print(f"no leaf changed against {base}: nothing was checked; `labrador check --all` checks the "
                  "whole taxonomy")
    status = emit(args, reports, deleted, prefix, renamed)
    for hook in entry_points(group="labrador.check_hooks"):
        status = max(status, hook.load()(args, reports) or 0)
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labrador", description="Labrador: grow a model from a taxonomy of "
                                     "community contributions.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    seen = set()
    for ep in sorted(entry_points(group="labrador.commands"), key=lambda e: e.name):
        if ep.name in seen:
            continue
        seen.add(ep.name)
        ep.load()(sub)
    if "validate" not in seen:  # running from a source tree that was never installed
        register_validate(sub)
        register_check(sub)
    return parser


def _warn(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """A deprecation (a settings key that moved) as one line that says what to write instead, not a source line."""
    print(f"labrador: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return Exit.USAGE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", FutureWarning)  # once per place, however often it is read
            warnings.showwarning = _warn
            return args.func(args)
    except CommandError as exc:  # a command registered without @command
        return report(args.command, exc)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
