"""Which taxonomy leaves changed between two commits: a tree-to-tree diff with pygit2, no working tree.

The bot (a bare cache of fetched pull-request heads) and the nightly job (main since the last promoted
model) use this; ``changes`` compares with a working tree. Both apply the one rule of
:func:`labrador.validators.changes.leaves_from_deltas`.
"""

from __future__ import annotations

from collections.abc import Callable

import pygit2
from pygit2.enums import DiffFind

from .changes import ChangeError, Changes, leaves_from_deltas, pair_moves, status_name
from .layout import LEAF_FILE

TREE_MODE = 0o040000


def subtree(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str) -> pygit2.Tree | None:
    """``tree[prefix]`` as a tree, or None when absent or not a folder."""
    if not prefix:
        return tree
    try:
        entry = tree[prefix]
    except KeyError:
        return None
    return repo[entry.id].peel(pygit2.Tree) if entry.filemode == TREE_MODE else None


def merge_base(repo: pygit2.Repository, base: str, head: str) -> pygit2.Commit:
    """The merge-base commit of ``base`` and ``head`` (``base`` itself when it is an ancestor)."""
    found = repo.merge_base(base, head)
    if found is None:
        raise ChangeError(f"base {base[:12]} and head {head[:12]} share no history")
    return repo[found].peel(pygit2.Commit)


MAX_CHANGED_ENTRIES = 200_000


def bounded_changed_entries(repo: pygit2.Repository, old: pygit2.Tree | None, new: pygit2.Tree,
                            limit: int = MAX_CHANGED_ENTRIES) -> int:
    """Entries of ``new`` not shared with ``old`` (unchanged subtrees are skipped by id), counted only up to
    ``limit``: a "tree bomb" (a few objects that expand to millions of paths) is refused in time
    proportional to ``limit``, before libgit2 would expand it."""
    stack: list[tuple[pygit2.Tree | None, pygit2.Tree]] = [(old, new)]
    seen = 0
    while stack:
        o, n = stack.pop()
        before = {e.name: e for e in o} if o is not None else {}
        for e in n:
            seen += 1
            if seen > limit:
                raise ChangeError(f"too many files in this change (more than {limit:,} new or changed entries "
                                  "under the taxonomy); split it, or ask a maintainer")
            prev = before.get(e.name)
            if prev is not None and prev.id == e.id:
                continue
            if e.filemode == TREE_MODE:
                older = repo[prev.id].peel(pygit2.Tree) if prev is not None and prev.filemode == TREE_MODE else None
                stack.append((older, repo[e.id].peel(pygit2.Tree)))
    return seen


def changed_leaves(repo: pygit2.Repository, base: str, head: str, taxonomy_dir: str = "taxonomy",
                   max_entries: int = MAX_CHANGED_ENTRIES) -> Changes:
    """Leaf folders (taxonomy-relative) changed between the merge-base of ``base`` and ``head``, and ``head``.

    Same meaning as :func:`labrador.validators.changes.changed_leaves`: a folder that gained, changed or lost any file
    is changed if its ``qna.yaml`` is still there at head, deleted if its ``qna.yaml`` went away. More than
    ``max_entries`` new or changed entries is a :class:`ChangeError` (bounded time and memory).
    """
    prefix = taxonomy_dir.replace("\\", "/").strip("/").removeprefix("./").strip("/")
    prefix = "" if prefix == "." else prefix
    mb = merge_base(repo, base, head)
    head_tree = repo[head].peel(pygit2.Tree)
    old = subtree(repo, mb.tree, prefix)
    new = subtree(repo, head_tree, prefix)
    if old is None and new is None:
        return Changes([], [], str(mb.id))
    if new is not None:
        bounded_changed_entries(repo, old, new, max_entries)
    empty = repo[repo.TreeBuilder().write()].peel(pygit2.Tree)
    diff = (old or empty).diff_to_tree(new or empty, context_lines=0)
    diff.find_similar(DiffFind.FIND_RENAMES)

    def leaf_at_head(folder: str) -> bool:
        return new is not None and _blob_or_link(new, f"{folder}/{LEAF_FILE}")

    deltas = ((status_name(d.status), d.old_file.path, d.new_file.path) for d in diff.deltas)
    found = leaves_from_deltas(deltas, "", leaf_at_head)

    def blob_in(tree: pygit2.Tree | None) -> Callable[[str], pygit2.Oid | None]:
        def get(folder: str) -> pygit2.Oid | None:
            try:
                return tree[f"{folder}/{LEAF_FILE}"].id if tree is not None else None
            except KeyError:
                return None

        return get

    deleted, renamed = pair_moves(found.changed, found.deleted, blob_in(old), blob_in(new))
    return Changes(changed=found.changed, deleted=deleted, base=str(mb.id), renamed=renamed)


def _blob_or_link(tree: pygit2.Tree, path: str) -> bool:
    try:
        return tree[path].filemode != TREE_MODE
    except KeyError:
        return False
