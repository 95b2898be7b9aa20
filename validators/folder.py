"""One leaf folder in, one report out: the check the disk walker and the bot's git-blob reader share.

Pure: the caller lists the folder's files and reads them (from disk or from git blobs); a file the caller
could not or would not read (a link, a submodule, something too large) arrives as the finding that says
why. So ``labrador validate``, the workflow, pre-commit and the bot give one verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from .checks import attribution
from .config import Config
from .findings import Finding, Report
from .layout import ATTRIBUTION, LEAF_FILE, LEAF_FILES, is_misnamed
from .leaf import check_file

FileContent = bytes | Finding | None  # bytes; a finding instead of the bytes; None: present but unreadable


def check_leaf_folder(
    rel: str,
    files: Mapping[str, FileContent],
    config: Config,
    *,
    extra: Callable[[Report], list[Finding]] | None = None,
    require_latest: bool = False,
) -> Report:
    """Check the leaf folder ``rel`` (taxonomy-relative) given ``files``: name -> content.

    ``extra`` adds findings for a leaf whose ``qna.yaml`` passed (documents, which need the network).
    ``require_latest``: judge ``qna.yaml`` by the newest schema whatever its version says (changed leaves).
    """
    qna_rel = f"{rel}/{LEAF_FILE}"
    qna = files.get(LEAF_FILE)
    if isinstance(qna, bytes):
        report = check_file(qna_rel, qna, config, require_latest=require_latest)
        if extra is not None and report.ok:
            report.findings.extend(extra(report))
    else:
        report = Report(path=qna_rel, branch=qna_rel.split("/", 1)[0])
        if LEAF_FILE in files and qna is None:
            report.findings.append(Finding("unreadable", "error", "cannot read qna.yaml", path=qna_rel))
    found = report.findings
    for name in sorted(files):
        path = f"{rel}/{name}"
        content = files[name]
        if isinstance(content, Finding):
            found.append(content if content.path else replace(content, path=path))
        elif is_misnamed(name):
            found.append(Finding("leaf-filename", "error", f"leaf file is named {name!r}, not {LEAF_FILE!r}",
                                 path=path, hint=f"Rename it to {LEAF_FILE}; upstream silently skips it."))
        elif name not in LEAF_FILES:
            found.append(Finding("leaf-files", "error", f"unexpected file {name!r} in a leaf folder", path=path,
                                 hint="A leaf folder holds only qna.yaml and attribution.txt; move documents "
                                 "to the document repository."))
    attr = files.get(ATTRIBUTION)
    if (LEAF_FILE in files or ATTRIBUTION in files) and not isinstance(attr, Finding):
        found.extend(attribution.check(f"{rel}/{ATTRIBUTION}", attr, config))
    report.findings = config.enabled(report.findings)
    return report
