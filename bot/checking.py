"""Run the checker on leaves read from git blobs at the PR head (never from a working tree).

Mirrors ``validators.tree.check_folder`` for a folder given as tree entries: ``qna.yaml`` via ``check_file``,
``attribution.txt``, stray and misnamed files, links. Settings always come from the bot's own configuration,
never from the pull request (a PR must not widen its own document allowlist).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pygit2

from validators import Config, Finding, Report, check_file
from validators.checks import attribution
from validators.documents import check_documents

from .forge import Annotation
from .treediff import TREE_MODE, subtree

LEAF_FILE = "qna.yaml"
ATTRIBUTION = attribution.FILENAME
LINK_MODE = 0o120000
COMMIT_MODE = 0o160000
MAX_READ = 4 * 1024 * 1024
BRANCH_LABELS = {"knowledge": "knowledge", "compositional_skills": "skill", "foundational_skills": "foundational"}


def _misnamed(name: str) -> bool:
    low = name.lower()
    return name != LEAF_FILE and low.startswith("qna") and low.endswith((".yaml", ".yml"))


def is_leaf_folder(names: Iterable[str]) -> bool:
    return any(n == LEAF_FILE or _misnamed(n) for n in names)


def folder_entries(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str, folder: str
                   ) -> dict[str, tuple[int, pygit2.Oid]] | None:
    """name -> (filemode, oid) of a taxonomy folder at ``tree``; None if the folder is not there."""
    top = subtree(repo, tree, prefix)
    sub = subtree(repo, top, folder) if top is not None else None
    if sub is None:
        return None
    return {e.name: (e.filemode, e.id) for e in sub}


def _read(repo: pygit2.Repository, mode: int, oid: pygit2.Oid, rel: str, found: list[Finding]) -> bytes | None:
    if mode == LINK_MODE:
        found.append(Finding("symlink", "error", "symbolic link; links are not followed", path=rel,
                             hint="Replace the link with a real file."))
        return None
    if mode in (TREE_MODE, COMMIT_MODE):
        found.append(Finding("unreadable", "error", "expected a file, found a folder or submodule", path=rel))
        return None
    size = repo.odb.read_header(oid)[1]
    if size > MAX_READ:
        found.append(Finding("file-too-large", "error", f"the file is {size:,} bytes", path=rel,
                             hint="A leaf needs a few KB: keep seeds short, put documents in the document repo."))
        return None
    return repo[oid].data


def check_leaf(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str, folder: str, config: Config,
               documents: bool = True, local_repo: Path | None = None) -> tuple[Report, bytes | None]:
    """Check one leaf folder at ``tree``; returns the report and the ``qna.yaml`` bytes (for previews)."""
    entries = folder_entries(repo, tree, prefix, folder) or {}
    qna_rel = f"{folder}/{LEAF_FILE}"
    pre: list[Finding] = []
    qna = _read(repo, *entries[LEAF_FILE], qna_rel, pre) if LEAF_FILE in entries else None
    if qna is not None:
        report = check_file(qna_rel, qna, config)
        if documents and report.ok and report.branch == "knowledge":
            report.findings.extend(check_documents(report, config, local_repo))
    else:
        report = Report(path=qna_rel, branch=folder.split("/", 1)[0])
    found = report.findings
    found.extend(pre)
    attr = None
    if ATTRIBUTION in entries:
        attr = _read(repo, *entries[ATTRIBUTION], f"{folder}/{ATTRIBUTION}", found)
    for name in sorted(entries):
        rel = f"{folder}/{name}"
        if _misnamed(name):
            found.append(Finding("leaf-filename", "error", f"leaf file is named {name!r}, not {LEAF_FILE!r}",
                                 path=rel, hint=f"Rename it to {LEAF_FILE}; upstream silently skips it."))
        elif name not in (LEAF_FILE, ATTRIBUTION):
            found.append(Finding("leaf-files", "error", f"unexpected file {name!r} in a leaf folder", path=rel,
                                 hint="A leaf folder holds only qna.yaml and attribution.txt; move documents "
                                 "to the document repository."))
    if LEAF_FILE in entries or ATTRIBUTION in entries:
        if not (ATTRIBUTION in entries and attr is None):  # an unreadable one already has its finding
            found.extend(attribution.check(f"{folder}/{ATTRIBUTION}", attr, config))
    if config.disabled_checks:
        report.findings = [f for f in report.findings if f.check not in config.disabled_checks]
    return report, qna


def check_changed(repo: pygit2.Repository, head: str, prefix: str, folders: Iterable[str], config: Config,
                  documents: bool = True, local_repo: Path | None = None
                  ) -> list[tuple[Report, bytes | None]]:
    """Check every changed folder that is a leaf at ``head`` (others are not leaves, as in a tree walk)."""
    tree = repo[head].peel(pygit2.Tree)
    out = []
    for folder in folders:
        entries = folder_entries(repo, tree, prefix, folder)
        if entries is None or not is_leaf_folder(entries):
            continue
        out.append(check_leaf(repo, tree, prefix, folder, config, documents, local_repo))
    return out


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
