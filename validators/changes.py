"""Which taxonomy leaves a contribution touches, found with libgit2 (pygit2) alone.

Why: the checker should only re-check the leaves a pull request (or a contributor's uncommitted work) changes.
We compare the merge-base of ``base`` and HEAD with the *working tree* - committed, staged, unstaged and
untracked edits alike - so ``labrador check`` gives the same answer before and after ``git commit``.
No ``git`` subprocess: no binary to install, no output to parse. The diff is limited to the taxonomy with a
pathspec and spread over the CPUs; on 10,000 leaves it costs about what ``git status`` does (one stat per
file, one readdir per folder; see ``benchmarks/bench_changes.py``).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pygit2
from pygit2.enums import DeltaStatus, DiffFind, DiffOption, RepositoryOpenFlag

from .layout import LEAF_FILE

DEFAULT_BASE = "main"
# untracked files count (a new leaf is usually untracked), ignored ones do not; the pathspec is literal
_FLAGS = (
    DiffOption.INCLUDE_UNTRACKED
    | DiffOption.RECURSE_UNTRACKED_DIRS
    | DiffOption.INCLUDE_TYPECHANGE
    | DiffOption.DISABLE_PATHSPEC_MATCH
)
_RENAMES = DiffFind.FIND_RENAMES | DiffFind.FIND_FOR_UNTRACKED
_MAX_WORKERS = 4
_Delta = tuple[DeltaStatus, str, str]  # status, old path, new path


@dataclass(frozen=True)
class Changes:
    """Leaf folders, taxonomy-relative posix paths such as ``knowledge/a/b``, sorted and unique.

    ``changed``: added, modified or renamed-to folders, and folders that gained any file (a stray or a
    misnamed ``qna.yml`` still needs checking). ``deleted``: folders whose ``qna.yaml`` is gone. A folder can
    be in both when its ``qna.yaml`` went away but other new files appeared there.
    ``base``: the merge-base commit sha, ``""`` in a repository with no commit yet.
    """

    changed: list[str]
    deleted: list[str]
    base: str
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old, new): a leaf moved, not lost


class ChangeError(Exception):
    """Change detection cannot run; the one-line message says why and how to fix it."""


class LeafChanges(NamedTuple):
    changed: list[str]
    deleted: list[str]


def leaves_from_deltas(
    deltas: Iterable[tuple[str, str | None, str | None]], prefix: str, leaf_at_head: Callable[[str], bool]
) -> LeafChanges:
    """The one rule for "which leaves changed", used by ``labrador check``, the bot and the nightly job.

    ``deltas``: (status, old path, new path) with repository-relative paths and status one of ``added``,
    ``modified``, ``deleted``, ``renamed`` (anything else counts as modified). A folder that gained, changed
    or lost any file is changed if its leaf is still there at head (``leaf_at_head``), deleted if its
    ``qna.yaml`` went away (a move is found afterwards by :func:`pair_moves`). Taxonomy-relative, sorted.
    """
    head_of = prefix + "/" if prefix else ""

    def folder(path: str | None) -> str | None:
        if not path or not path.startswith(head_of):
            return None
        return posixpath.dirname(path[len(head_of):]) or None  # files at the top are no leaf's

    changed: set[str] = set()
    deleted: set[str] = set()
    for status, old_path, new_path in deltas:
        if status != "deleted" and (new := folder(new_path)):
            changed.add(new)
        if status not in ("deleted", "renamed") or (old := folder(old_path)) is None:
            continue
        if leaf_at_head(old):
            changed.add(old)  # the leaf lives on but lost a file (say attribution.txt)
        elif posixpath.basename(old_path or "") == LEAF_FILE:
            deleted.add(old)
    return LeafChanges(sorted(changed), sorted(deleted))


def pair_moves(changed: list[str], deleted: list[str], old_blob: Callable[[str], object | None],
               new_blob: Callable[[str], object | None]) -> tuple[list[str], list[tuple[str, str]]]:
    """Deleted leaves that reappear elsewhere as the same ``qna.yaml`` bytes are moves, not losses.

    ``old_blob(folder)``: the id of its ``qna.yaml`` at the base (None: absent); ``new_blob(folder)``: the
    same at head. A move is only claimed when it is unambiguous (one deleted and one new leaf with those
    bytes), so the answer never depends on the order a diff was walked in. Returns (deleted, renamed).
    """
    gone = {d: b for d in deleted if (b := old_blob(d)) is not None}
    new = {c: b for c in changed if old_blob(c) is None and (b := new_blob(c)) is not None}
    renamed = []
    for d, b in gone.items():
        sources = [x for x, y in gone.items() if y == b]
        targets = [c for c, y in new.items() if y == b]
        if len(sources) == 1 and len(targets) == 1:
            renamed.append((d, targets[0]))
    moved = {d for d, _ in renamed}
    return [d for d in deleted if d not in moved], sorted(renamed)


_STATUS = {DeltaStatus.ADDED: "added", DeltaStatus.DELETED: "deleted", DeltaStatus.RENAMED: "renamed",
           DeltaStatus.UNTRACKED: "added"}


def status_name(status: DeltaStatus) -> str:
    """pygit2's delta status as the words :func:`leaves_from_deltas` takes."""
    return _STATUS.get(status, "modified")


def _open(repo_dir: Path) -> pygit2.Repository:
    """Open exactly ``repo_dir`` (no search upwards: the taxonomy path is relative to it)."""
    try:
        repo = pygit2.Repository(str(repo_dir), RepositoryOpenFlag.NO_SEARCH)
    except (pygit2.GitError, KeyError, OSError) as exc:
        raise ChangeError(
            f"{repo_dir} is not a git repository: run `git init` there or pass the repository's top folder"
        ) from exc
    if repo.is_bare or repo.workdir is None:
        raise ChangeError(f"{repo_dir} is a bare repository: run the check in a clone with a working tree")
    return repo


def _resolve(repo: pygit2.Repository, base: str) -> pygit2.Commit:
    """``base`` as a commit: a local branch, then ``origin``'s branch, then anything revparse knows."""
    for name in (f"refs/heads/{base}", f"refs/remotes/origin/{base}"):
        ref = repo.references.get(name)
        if ref is not None:
            try:
                return ref.peel(pygit2.Commit)
            except (pygit2.GitError, pygit2.InvalidSpecError, ValueError):
                break
    try:
        return repo.revparse_single(base).peel(pygit2.Commit)
    except (KeyError, ValueError, TypeError, pygit2.GitError, pygit2.InvalidSpecError) as exc:
        remote = base.removeprefix("origin/")
        raise ChangeError(f"base {base!r} not found: run `git fetch origin {remote}` or pass --base REF") from exc


def _native_deltas(workdir: str, tree_id: pygit2.Oid | None, paths: list[str]) -> list[_Delta]:
    """tree -> index -> workdir limited to ``paths``, as ``git_diff_tree_to_workdir_with_index`` does.

    pygit2's public diff methods take no pathspec, and without one libgit2 walks and stats the whole working
    tree (virtualenvs included), so we call the same libgit2 functions through pygit2's cffi layer. Runs in a
    worker thread: libgit2 objects are not shared between threads, so it opens its own repository and index.
    """
    from pygit2.errors import check_error
    from pygit2.ffi import C, ffi
    from pygit2.utils import StrArray

    repo = pygit2.Repository(workdir, RepositoryOpenFlag.NO_SEARCH)
    index = repo.index  # read fresh from disk: its stat cache spares re-hashing unchanged files
    tree = repo[tree_id].peel(pygit2.Tree) if tree_id is not None else None
    staged, unstaged = ffi.new("git_diff **"), ffi.new("git_diff **")
    with StrArray(paths) as arr:
        copts = ffi.new("git_diff_options *")
        check_error(C.git_diff_options_init(copts, 1))
        copts.flags, copts.context_lines = int(_FLAGS), 0
        arr.assign_to(copts.pathspec)
        ctree = ffi.new("git_tree **")
        if tree is not None:
            ffi.buffer(ctree)[:] = tree._pointer[:]
        check_error(C.git_diff_tree_to_index(staged, repo._repo, ctree[0], index._index, copts))
        check_error(C.git_diff_index_to_workdir(unstaged, repo._repo, index._index, copts))
    diffs = [pygit2.Diff.from_c(bytes(ffi.buffer(d)[:]), repo) for d in (staged, unstaged)]
    return _combine(workdir, *diffs)


def _public_deltas(workdir: str, tree_id: pygit2.Oid | None) -> list[_Delta]:
    """The same diff through pygit2's public API alone: slower (whole working tree), used if internals move."""
    repo = pygit2.Repository(workdir, RepositoryOpenFlag.NO_SEARCH)
    index = repo.index
    tree = repo[tree_id if tree_id is not None else repo.TreeBuilder().write()].peel(pygit2.Tree)
    return _combine(workdir, tree.diff_to_index(index, _FLAGS), index.diff_to_workdir(_FLAGS))


def _combine(workdir: str, staged: pygit2.Diff, unstaged: pygit2.Diff) -> list[_Delta]:
    """Merge tree->index with index->workdir, find renames, and drop edits staged then undone on disk.

    libgit2's merge keeps a file staged and then reverted as modified (as ``git status`` lists it twice);
    compared with the working tree it is unchanged, so a file whose bytes hash to the tree's blob is dropped.
    """
    modified = DeltaStatus.MODIFIED
    tree_ids = {d.new_file.path: d.old_file.id for d in staged.deltas if d.status == modified}
    suspects = {
        d.new_file.path: tree_ids[d.new_file.path]
        for d in unstaged.deltas
        if d.status == modified and d.new_file.path in tree_ids
    }
    staged.merge(unstaged)
    staged.find_similar(_RENAMES)
    out = []
    for d in staged.deltas:
        path = d.new_file.path
        if d.status == modified and path in suspects and _hash(Path(workdir, path)) == suspects[path]:
            continue
        out.append((d.status, d.old_file.path, path))
    return out


def _hash(path: Path) -> pygit2.Oid | None:
    """The blob id of a working-tree file as stored (no clean filters: a mismatch only keeps a report)."""
    try:
        return pygit2.hashfile(str(path))
    except (OSError, pygit2.GitError):
        return None


def _units(repo: pygit2.Repository, tree: pygit2.Tree | None, prefix: str) -> list[str]:
    """Paths two levels below the taxonomy, from the merge-base tree and the working tree: units of work.

    A path in neither can hold no change, so together they cover the diff; files and empty folders stand
    for themselves (a pathspec names a file or everything under a folder).
    """
    found: dict[str, set[str] | None] = {}

    def note(name: str, kids: list[str] | None) -> None:
        seen = found.get(name, set())
        found[name] = None if kids is None or seen is None else seen.union(kids)

    try:
        top = tree[prefix] if tree is not None and prefix else tree
    except KeyError:
        top = None
    for entry in top if top is not None and top.type_str == "tree" else ():
        note(entry.name, [e.name for e in repo[entry.id]] if entry.type_str == "tree" else None)
    try:
        with os.scandir(Path(repo.workdir, prefix)) as entries:
            for entry in entries:
                if entry.name == ".git" and not prefix:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    with os.scandir(entry.path) as kids:
                        note(entry.name, [kid.name for kid in kids])
                else:
                    note(entry.name, None)
    except (FileNotFoundError, NotADirectoryError):
        pass
    head = prefix + "/" if prefix else ""
    units = []
    for name, kids in sorted(found.items()):
        units += [f"{head}{name}/{kid}" for kid in sorted(kids)] if kids else [head + name]
    return units


def _deltas(repo: pygit2.Repository, tree: pygit2.Tree | None, prefix: str) -> list[_Delta]:
    """Spread the diff over the CPUs: walking 10,000 folders is system-call bound, and libgit2 drops the GIL."""
    workdir, tree_id = repo.workdir, (tree.id if tree is not None else None)
    if not _NATIVE:
        return _public_deltas(workdir, tree_id)
    units = _units(repo, tree, prefix)
    if not units:
        return []
    workers = min(_cpus(), _MAX_WORKERS, len(units))
    groups = [units[i::workers] for i in range(workers)]
    if workers == 1:
        return _native_deltas(workdir, tree_id, units)
    with ThreadPoolExecutor(workers) as pool:
        return [d for part in pool.map(lambda g: _native_deltas(workdir, tree_id, g), groups) for d in part]


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _native_available() -> bool:
    try:
        from pygit2.ffi import C
        from pygit2.utils import StrArray

        return bool(C.git_diff_tree_to_index and C.git_diff_index_to_workdir and StrArray) and hasattr(
            pygit2.Tree, "_pointer"
        )
    except (ImportError, AttributeError):
        return False


_NATIVE = _native_available()


def changed_leaves(repo_dir: Path, base: str, taxonomy_dir: str = "taxonomy") -> Changes:
    """Leaf folders changed between the merge-base of ``base`` and HEAD, and the working tree."""
    repo_dir = Path(repo_dir)
    repo = _open(repo_dir)
    prefix = taxonomy_dir.replace("\\", "/").strip("/").removeprefix("./").strip("/")
    prefix = "" if prefix == "." else prefix
    if repo.head_is_unborn:
        tree, sha = None, ""  # no commit yet: everything present is new
    else:
        head = repo.head.peel(pygit2.Commit)
        other = _resolve(repo, base)
        merge_base = repo.merge_base(other.id, head.id)
        if merge_base is None:
            raise ChangeError(
                f"base {base!r} and HEAD share no history: fetch the full history (`git fetch --unshallow`) "
                "or pass --base REF"
            )
        tree, sha = repo[merge_base].peel(pygit2.Tree), str(merge_base)
    root = Path(repo.workdir) / prefix if prefix else Path(repo.workdir)
    try:
        deltas = _deltas(repo, tree, prefix)
    except pygit2.GitError as exc:
        raise ChangeError(f"cannot compare {repo_dir} with {base!r}: {exc}; run `git status` there to see why") from exc
    found = leaves_from_deltas(((status_name(st), old, new) for st, old, new in deltas), prefix,
                               lambda folder: (root / folder / LEAF_FILE).is_file())
    head_of = prefix + "/" if prefix else ""

    def old_blob(folder: str) -> pygit2.Oid | None:
        try:
            return tree[f"{head_of}{folder}/{LEAF_FILE}"].id if tree is not None else None
        except KeyError:
            return None

    def new_blob(folder: str) -> pygit2.Oid | None:
        path = root / folder / LEAF_FILE
        return _hash(path) if path.is_file() else None

    deleted, renamed = pair_moves(found.changed, found.deleted, old_blob, new_blob)
    return Changes(changed=found.changed, deleted=deleted, base=sha, renamed=renamed)


def default_base(repo_dir: Path) -> str | None:
    """What ``labrador check`` compares with when no ``--base`` is given: ``origin/main`` when it exists (what
    a pull request targets, and the right answer on ``main`` itself), else ``main``, else ``None``."""
    try:
        repo = _open(Path(repo_dir))
    except ChangeError:
        return None
    if repo.references.get(f"refs/remotes/origin/{DEFAULT_BASE}") is not None:
        return f"origin/{DEFAULT_BASE}"
    if repo.references.get(f"refs/heads/{DEFAULT_BASE}") is not None:
        return DEFAULT_BASE
    return None


def same_commit(repo_dir: Path, base: str) -> bool:
    """Whether ``base`` and HEAD are the same commit (so committed work cannot differ from it)."""
    try:
        repo = _open(Path(repo_dir))
        return not repo.head_is_unborn and _resolve(repo, base).id == repo.head.peel(pygit2.Commit).id
    except (ChangeError, pygit2.GitError):
        return False
