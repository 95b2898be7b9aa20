"""Real git objects behind the fake: a bare repository per GitHub repo, written with pygit2.

Keeping commits real means PR file lists, head SHAs and `git fetch refs/pull/N/head` all agree,
exactly as on GitHub, instead of the API inventing SHAs the bot could never fetch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2

FileSpec = Mapping[str, "str | bytes | None"]  # path -> new content, None deletes the file
_STATUS = {"A": "added", "D": "removed", "M": "modified", "R": "renamed", "C": "copied", "T": "changed"}


@dataclass(frozen=True)
class FileChange:
    """One entry of a PR/commit file list, in GitHub's vocabulary."""

    filename: str
    status: str
    additions: int
    deletions: int
    sha: str | None
    patch: str | None
    previous_filename: str | None = None


def files_from_dir(root: Path) -> dict[str, bytes]:
    """Read a directory tree (skipping `.git`) into a `{posix path: bytes}` mapping."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and ".git" not in rel.parts:
            out[rel.as_posix()] = path.read_bytes()
    return out


class GitStore:
    """A bare repository plus the few operations the fake GitHub needs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = pygit2.init_repository(str(path), bare=True)

    def commit(
        self,
        files: FileSpec,
        message: str,
        *,
        parent: str | None,
        ref: str | None = None,
        author: tuple[str, str] = ("Labrador Test", "test@labrador.invalid"),
    ) -> str:
        """Commit `files` on top of `parent` (None: root commit); move `ref` when given."""
        index = pygit2.Index()
        if parent:
            index.read_tree(self.repo[parent].peel(pygit2.Commit).tree)
        for name, content in files.items():
            if content is None:
                if name not in index:
                    raise KeyError(f"cannot delete {name}: not in the tree")
                index.remove(name)
                continue
            data = content.encode() if isinstance(content, str) else content
            index.add(pygit2.IndexEntry(name, self.repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB))
        sig = pygit2.Signature(author[0], author[1], int(time.time()), 0)
        oid = self.repo.create_commit(
            None, sig, sig, message, index.write_tree(self.repo), [pygit2.Oid(hex=parent)] if parent else []
        )
        if ref:
            self.set_ref(ref, str(oid))
        return str(oid)

    def set_ref(self, ref: str, sha: str) -> None:
        self.repo.references.create(ref, pygit2.Oid(hex=sha), force=True)

    def tip(self, ref: str) -> str | None:
        found = self.repo.references.get(ref)
        return str(found.peel(pygit2.Commit).id) if found else None

    def resolve(self, rev: str) -> str | None:
        """A commit SHA for a full/short SHA, a branch, a tag or a full ref name; None if unknown."""
        for name in (rev, f"refs/heads/{rev}", f"refs/tags/{rev}"):
            if name.startswith("refs/") and (sha := self.tip(name)):
                return sha
        try:
            return str(self.repo.revparse_single(rev).peel(pygit2.Commit).id) if len(rev) >= 7 else None
        except (KeyError, ValueError, pygit2.GitError):
            return None

    def lookup(self, sha: str, path: str) -> pygit2.Object | None:
        """Blob or tree at `path` in commit `sha` ("" is the root tree); None if absent."""
        tree = self.repo[sha].peel(pygit2.Commit).tree
        if not path.strip("/"):
            return tree
        try:
            return self.repo[tree[path.strip("/")].id]
        except KeyError:
            return None

    def read(self, sha: str, path: str) -> bytes | None:
        obj = self.lookup(sha, path)
        return obj.data if isinstance(obj, pygit2.Blob) else None

    def merge_base(self, a: str, b: str) -> str:
        base = self.repo.merge_base(pygit2.Oid(hex=a), pygit2.Oid(hex=b))
        if base is None:
            raise ValueError(f"{a} and {b} share no history")
        return str(base)

    def commits_between(self, base: str, head: str) -> int:
        """Commits reachable from head but not from base (GitHub's PR `commits` count)."""
        walker = self.repo.walk(pygit2.Oid(hex=head))
        walker.hide(pygit2.Oid(hex=base))
        return sum(1 for _ in walker)

    def changes(self, base: str | None, head: str) -> list[FileChange]:
        """Three-dot diff like GitHub's PR files: from merge-base(base, head) to head."""
        head_tree = self.repo[head].peel(pygit2.Commit).tree
        if base is None:
            diff = head_tree.diff_to_tree(swap=True)
        else:
            diff = self.repo.diff(self.repo[self.merge_base(base, head)].peel(pygit2.Commit).tree, head_tree)
        diff.find_similar()
        out = []
        for patch in diff:
            delta = patch.delta
            _, adds, dels = patch.line_stats
            text = None if delta.is_binary else patch.text or ""
            if text is not None:
                text = text[text.find("@@") :] if "@@" in text else ""
            status = _STATUS.get(delta.status_char(), "modified")
            removed = status == "removed"
            out.append(
                FileChange(
                    filename=delta.new_file.path,
                    status=status,
                    additions=adds,
                    deletions=dels,
                    sha=str(delta.old_file.id if removed else delta.new_file.id),
                    patch=text.rstrip("\n") if text is not None else None,
                    previous_filename=delta.old_file.path if status == "renamed" else None,
                )
            )
        return out

    def merge(self, base_ref: str, head: str, message: str) -> str:
        """Create a real merge commit of `head` into `base_ref` (what the merge button does)."""
        base = self.tip(base_ref)
        if base is None:
            raise KeyError(base_ref)
        index = self.repo.merge_commits(pygit2.Oid(hex=base), pygit2.Oid(hex=head))
        if index.conflicts is not None:
            raise ValueError(f"merge of {head} into {base_ref} conflicts")
        sig = pygit2.Signature("GitHub", "noreply@github.com", int(time.time()), 0)
        tree = index.write_tree(self.repo)
        oid = self.repo.create_commit(base_ref, sig, sig, message, tree, [pygit2.Oid(hex=base), pygit2.Oid(hex=head)])
        return str(oid)

    def commit_info(self, sha: str) -> pygit2.Commit:
        return self.repo[sha].peel(pygit2.Commit)
