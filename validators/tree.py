"""Walk a taxonomy on disk: find leaves, check their folders and files, reuse cached verdicts.

The only module of the checker that reads the file system (git lives in ``changes``,
documents in ``documents``). Symbolic links are reported, never followed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .cache import CheckCache, leaf_key
from .config import Config
from .findings import Finding, Report
from .folder import check_leaf_folder
from .layout import ATTRIBUTION, BRANCHES, LEAF_FILE, is_misnamed

MAX_READ = 4 * 1024 * 1024  # never read more than this of one file; check_file refuses far less


@dataclass
class LeafFolder:
    """A folder that holds (or clearly meant to hold) a leaf: its files, as the walk saw them."""

    rel: str  # taxonomy-relative posix path of the folder
    files: dict[str, os.DirEntry]


def walk(root: Path) -> tuple[list[LeafFolder], list[Finding]]:
    """All leaf folders under ``root`` plus findings for symlinks met on the way."""
    leaves: list[LeafFolder] = []
    found: list[Finding] = []
    stack = [("", str(root))]
    while stack:
        rel, path = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError as exc:
            found.append(Finding("unreadable", "error", f"cannot read folder: {exc.strerror}", path=rel or "."))
            continue
        files: dict[str, os.DirEntry] = {}
        for e in entries:
            child = f"{rel}/{e.name}" if rel else e.name
            if e.is_symlink():
                if rel or e.name in ("knowledge", "compositional_skills", "foundational_skills"):
                    found.append(_symlink_finding(root, child, e))
                continue
            if e.is_dir(follow_symlinks=False):
                if not e.name.startswith("."):
                    stack.append((child, e.path))
            else:
                files[e.name] = e
        if rel and (LEAF_FILE in files or any(is_misnamed(n) for n in files)):
            leaves.append(LeafFolder(rel, files))
    leaves.sort(key=lambda leaf: leaf.rel)
    return leaves, found


def _symlink_finding(root: Path, rel: str, entry: os.DirEntry) -> Finding:
    try:
        target = os.path.realpath(entry.path)
        outside = os.path.commonpath([target, str(root.resolve())]) != str(root.resolve())
    except (OSError, ValueError):
        outside = True
    where = "outside the taxonomy" if outside else "inside the taxonomy"
    return Finding("symlink", "error", f"symbolic link pointing {where}; links are not followed", path=rel,
                   hint="Replace the link with a real file or folder.")


def _read(entry: os.DirEntry) -> bytes | None:
    try:
        with open(entry.path, "rb") as fh:
            return fh.read(MAX_READ + 1)
    except OSError:
        return None


def check_folder(folder: LeafFolder, config: Config, cache: CheckCache | None = None,
                 extra: Callable[[Report], list[Finding]] | None = None, *, require_latest: bool = False) -> Report:
    """Check one leaf folder on disk: read its files, then the shared :func:`check_leaf_folder`."""
    files: dict[str, bytes | None] = {name: _read(entry) for name, entry in folder.files.items()}
    qna_rel = f"{folder.rel}/{LEAF_FILE}"
    key = None
    if cache is not None:
        mode = f"latest={require_latest};documents={extra is not None}"
        key = leaf_key(qna_rel, files.get(LEAF_FILE), files.get(ATTRIBUTION), sorted(files), config, mode)
        hit = cache.get(key)
        if hit is not None:
            return Report(path=qna_rel, findings=hit, branch=qna_rel.split("/", 1)[0])
    report = check_leaf_folder(folder.rel, files, config, extra=extra, require_latest=require_latest)
    if cache is not None and key is not None and not any(f.check == "document-fetch" for f in report.findings):
        cache.put(key, report.findings)
    return report


def check_tree(root: Path, config: Config, only: Iterable[str] | None = None, cache: CheckCache | None = None,
               extra: Callable[[Report], list[Finding]] | None = None,
               progress: Callable[[int, int], None] | None = None, *, require_latest: bool = False) -> list[Report]:
    """Check every leaf under ``root`` (or only the leaf folders named in ``only``); ``require_latest`` for
    changed leaves (upstream's pull-request rule)."""
    leaves, stray = walk(root)
    if only is not None:
        wanted = {p.strip("/") for p in only}
        leaves = [leaf for leaf in leaves if leaf.rel in wanted]
        stray = [f for f in stray if any(f.path == w or f.path.startswith(w + "/") for w in wanted)]
    reports = []
    for i, leaf in enumerate(leaves):
        reports.append(check_folder(leaf, config, cache, extra, require_latest=require_latest))
        if progress is not None:
            progress(i + 1, len(leaves))
    if stray:
        reports.append(Report(path=".", findings=stray))
    return reports


class SelectionError(ValueError):
    """A path that names no leaf; the message says which and where it was looked for."""


def select_leaves(root: Path, wanted: Iterable[Path]) -> list[str]:
    """Leaf folders (taxonomy-relative) named by ``wanted``: files or folders, given from here or from the
    taxonomy; a folder selects every leaf below it (a leaf folder, itself). A path that names no leaf is an
    error, never an empty selection that "passes"."""
    folders = [leaf.rel for leaf in walk(root)[0]]
    base = root.resolve()
    chosen: set[str] = set()
    for path in wanted:
        hit = next((c for c in (Path(path), root / path) if c.exists() or c.is_symlink()), None)
        if hit is None:
            raise SelectionError(f"{path}: no such leaf, file or folder (here or in {root})")
        q = hit.parent.resolve() if hit.is_file() else hit.resolve()
        try:
            rel = q.relative_to(base).as_posix()
        except ValueError:
            raise SelectionError(f"{path} is not inside the taxonomy folder {root}") from None
        below = [f for f in folders if rel in (".", f) or f.startswith(rel + "/")]
        if not below:
            raise SelectionError(f"{path}: no leaf (qna.yaml) there or below it")
        chosen.update(below)
    return sorted(chosen)


def repo_root(start: Path) -> Path | None:
    """The git work tree holding ``start``: the nearest folder with a ``.git`` (a folder, or the file of a
    linked worktree or submodule); found without pygit2, so the checker's fast path stays light."""
    start = Path(start).resolve()
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return None


def find_taxonomy(start: Path) -> Path:
    """The taxonomy folder for a command run in ``start``: ``./taxonomy``; else the nearest enclosing folder
    named ``taxonomy``; else the nearest folder at or above ``start`` holding a branch folder (InstructLab's
    layout, branches at the repository root); else ``start`` itself."""
    start = Path(start)
    if (start / "taxonomy").is_dir():
        return start / "taxonomy"
    here = start.resolve()
    for d in (here, *here.parents):
        if d.name == "taxonomy" and any((d / b).is_dir() for b in BRANCHES):
            return _relative(d, here, start)
    for d in (here, *here.parents):
        if any((d / b).is_dir() for b in BRANCHES):
            return _relative(d, here, start)
        if (d / ".git").exists():
            break
    return start


def _relative(target: Path, here: Path, start: Path) -> Path:
    """``target`` written relative to ``start`` (``..`` steps), so printed paths stay short."""
    steps = len(here.parts) - len(target.parts)
    return start.joinpath(*([".."] * steps)) if steps > 0 and target in here.parents else target


def taxonomy_from_arg(path: Path | None) -> Path:
    """``--taxonomy DIR`` as commands read it: that folder (which must exist), else the one found from here."""
    from .exits import UsageError

    if path is not None:
        if not path.is_dir():
            raise UsageError(f"taxonomy folder {path} does not exist; pass --taxonomy DIR")
        return path
    return find_taxonomy(Path("."))


def leaves_from_args(taxonomy: Path, wanted: Sequence[Path]) -> list[str]:
    """Leaf folders (taxonomy-relative) named by a command's arguments (every leaf when none): the checker's rule."""
    from .exits import UsageError

    if not wanted:
        return [leaf.rel for leaf in walk(taxonomy)[0]]
    try:
        return select_leaves(taxonomy, wanted)
    except SelectionError as exc:
        raise UsageError(str(exc)) from None
