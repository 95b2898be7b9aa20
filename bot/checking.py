"""Run the checker on leaves read from git blobs at the PR head (never from a working tree).

Reads a folder's blobs and hands them to :func:`labrador.validators.folder.check_leaf_folder`, the same check the
disk walker uses, so the bot's verdict is the checker's. Settings always come from the bot's own
configuration, never from the pull request (a PR must not widen its own document allowlist).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pygit2

from labrador.validators import Config, Finding, Report
from labrador.validators.commits import TREE_MODE, subtree
from labrador.validators.documents import check_documents
from labrador.validators.folder import FileContent, check_leaf_folder
from labrador.validators.layout import LEAF_FILE, is_leaf_folder

from .forge import Annotation

LINK_MODE = 0o120000
COMMIT_MODE = 0o160000
MAX_READ = 4 * 1024 * 1024
BRANCH_LABELS = {"knowledge": "knowledge", "compositional_skills": "skill", "foundational_skills": "foundational"}


def folder_entries(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str, folder: str
                   ) -> dict[str, tuple[int, pygit2.Oid]] | None:
    """name -> (filemode, oid) of a taxonomy folder at ``tree``; None if the folder is not there."""
    top = subtree(repo, tree, prefix)
    sub = subtree(repo, top, folder) if top is not None else None
    if sub is None:
        return None
    return {e.name: (e.filemode, e.id) for e in sub}


def _content(repo: pygit2.Repository, mode: int, oid: pygit2.Oid) -> FileContent:
    if mode == LINK_MODE:
        return Finding("symlink", "error", "symbolic link; links are not followed",
                       hint="Replace the link with a real file.")
    if mode in (TREE_MODE, COMMIT_MODE):
        return Finding("unreadable", "error", "expected a file, found a folder or submodule")
    size = repo.odb.read_header(oid)[1]
    if size > MAX_READ:
        return Finding("file-too-large", "error", f"the file is {size:,} bytes",
                       hint="A leaf needs a few KB: keep seeds short, put documents in the document repo.")
    return repo[oid].data


def check_leaf(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str, folder: str, config: Config,
               documents: bool = True, local_repo: Path | None = None) -> tuple[Report, bytes | None]:
    """Check one leaf folder at ``tree`` as a changed leaf (newest schema required); returns the report and
    the ``qna.yaml`` bytes (for previews)."""
    entries = folder_entries(repo, tree, prefix, folder) or {}
    files = {name: _content(repo, mode, oid) for name, (mode, oid) in entries.items()}

    def docs(report: Report) -> list[Finding]:
        return check_documents(report, config, local_repo) if report.branch == "knowledge" else []

    report = check_leaf_folder(folder, files, config, extra=docs if documents else None, require_latest=True)
    qna = files.get(LEAF_FILE)
    return report, qna if isinstance(qna, bytes) else None


def check_changed(repo: pygit2.Repository, head: str, prefix: str, folders: Iterable[str], config: Config,
                  documents: bool = True, local_repo: Path | None = None, max_leaves: int | None = None
                  ) -> tuple[list[tuple[Report, bytes | None]], int]:
    """Check every changed folder that is a leaf at ``head`` (others are not leaves, as in a tree walk), at
    most ``max_leaves`` of them; symbolic links anywhere in a changed folder are reported (as the disk walk
    does) in a report for path ``.``. Returns the results and how many leaves were left unchecked."""
    tree = repo[head].peel(pygit2.Tree)
    out = []
    links: list[Finding] = []
    skipped = 0
    for folder in folders:
        entries = folder_entries(repo, tree, prefix, folder)
        if entries is None:
            continue
        if not is_leaf_folder(entries):
            links += [Finding("symlink", "error", "symbolic link; links are not followed", path=f"{folder}/{name}",
                              hint="Replace the link with a real file or folder.")
                      for name, (mode, _) in sorted(entries.items()) if mode == LINK_MODE]
            continue
        if max_leaves is not None and len(out) >= max_leaves:
            skipped += 1
            continue
        out.append(check_leaf(repo, tree, prefix, folder, config, documents, local_repo))
    if links:
        out.append((Report(path=".", findings=links), None))
    return out, skipped


def annotations(reports: Iterable[Report], prefix: str) -> list[Annotation]:
    """Findings as check-run annotations on repository paths (line 1 when a finding is about a whole file)."""
    head = f"{prefix}/" if prefix else ""
    out = []
    for report in reports:
        for f in report.sorted():
            line = f.line or 1
            out.append(Annotation(path=head + (f.path or report.path), start_line=line, end_line=line,
                                  level="failure" if f.severity == "error" else "warning", message=f.message,
                                  title=f.check, raw_details=f.hint, start_column=f.column or None,
                                  end_column=f.column or None))
    return out


def labels_for(folders: Iterable[str]) -> list[str]:
    """``knowledge`` / ``skill`` / ``foundational`` by the branches a PR touches."""
    return sorted({BRANCH_LABELS[b] for f in folders if (b := f.split("/", 1)[0]) in BRANCH_LABELS})
