"""Walk a taxonomy on disk: find leaves, check their folders and files, reuse cached verdicts.

The only module of the checker that reads the file system (git lives in ``changes``,
documents in ``documents``). Symbolic links are reported, never followed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .cache import CheckCache, leaf_key
from .checks import attribution
from .config import Config
from .findings import Finding, Report
from .leaf import LEAF_FILE, check_file

ATTRIBUTION = attribution.FILENAME
LEAF_FILES = {LEAF_FILE, ATTRIBUTION}
MAX_READ = 4 * 1024 * 1024  # never read more than this of one file; check_file refuses far less


def _misnamed(name: str) -> bool:
    low = name.lower()
    return name != LEAF_FILE and low.startswith("qna") and low.endswith((".yaml", ".yml"))


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
        if rel and (LEAF_FILE in files or any(_misnamed(n) for n in files)):
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
                 extra: Callable[[Report], list[Finding]] | None = None) -> Report:
    """Check one leaf folder: qna.yaml, attribution.txt, stray and misnamed files."""
    files = folder.files
    qna_rel = f"{folder.rel}/{LEAF_FILE}"
    qna_entry = files.get(LEAF_FILE)
    qna = _read(qna_entry) if qna_entry else None
    attr_entry = files.get(ATTRIBUTION)
    attr = _read(attr_entry) if attr_entry else None
    key = None
    if cache is not None:
        key = leaf_key(qna_rel, qna, attr, sorted(files), config)
        hit = cache.get(key)
        if hit is not None:
            return Report(path=qna_rel, findings=hit, branch=qna_rel.split("/", 1)[0])
    if qna is not None:
        report = check_file(qna_rel, qna, config)
        if extra is not None and report.ok:
            report.findings.extend(extra(report))
    else:
        report = Report(path=qna_rel, branch=qna_rel.split("/", 1)[0])
        if qna_entry is not None:
            report.findings.append(Finding("unreadable", "error", "cannot read qna.yaml", path=qna_rel))
    found = report.findings
    for name in sorted(files):
        rel = f"{folder.rel}/{name}"
        if _misnamed(name):
            found.append(Finding("leaf-filename", "error", f"leaf file is named {name!r}, not {LEAF_FILE!r}",
                                 path=rel, hint=f"Rename it to {LEAF_FILE}; upstream silently skips it."))
        elif name not in LEAF_FILES:
            found.append(Finding("leaf-files", "error", f"unexpected file {name!r} in a leaf folder", path=rel,
                                 hint="A leaf folder holds only qna.yaml and attribution.txt; move documents "
                                 "to the document repository."))
    if qna_entry is not None or attr_entry is not None:
        found.extend(attribution.check(f"{folder.rel}/{ATTRIBUTION}", attr, config))
    if config.disabled_checks:
        report.findings = [f for f in report.findings if f.check not in config.disabled_checks]
    if cache is not None and key is not None and not any(f.check == "document-fetch" for f in report.findings):
        cache.put(key, report.findings)
    return report


def check_tree(root: Path, config: Config, only: Iterable[str] | None = None, cache: CheckCache | None = None,
               extra: Callable[[Report], list[Finding]] | None = None,
               progress: Callable[[int, int], None] | None = None) -> list[Report]:
    """Check every leaf under ``root`` (or only the leaf folders named in ``only``)."""
    leaves, stray = walk(root)
    if only is not None:
        wanted = {p.strip("/") for p in only}
        leaves = [leaf for leaf in leaves if leaf.rel in wanted]
        stray = [f for f in stray if any(f.path == w or f.path.startswith(w + "/") for w in wanted)]
    reports = []
    for i, leaf in enumerate(leaves):
        reports.append(check_folder(leaf, config, cache, extra))
        if progress is not None:
            progress(i + 1, len(leaves))
    if stray:
        reports.append(Report(path=".", findings=stray))
    return reports
