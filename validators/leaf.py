"""``check_file``: every check that needs only a leaf's path and bytes. Pure: no disk, no git, no network."""

from __future__ import annotations

from dataclasses import replace

from . import schema
from .checks import TEXT_CHECKS, duplicate_seed, leaf_path, word_limits
from .config import Config
from .findings import Finding, Report
from .layout import LEAF_FILE
from .yamlload import load_yaml

LATEST = 3
_DEFAULT = Config()
_BOMS = ((b"\xff\xfe\0\0", "UTF-32"), (b"\0\0\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))


def branch_of(relpath: str) -> str:
    return relpath.split("/", 1)[0]


def check_file(relpath: str, data: bytes, config: Config | None = None, *, require_latest: bool = False) -> Report:
    """Check one ``qna.yaml`` given its path inside the taxonomy (which decides the branch) and its bytes.

    ``require_latest``: upstream's pull-request rule: a changed leaf is judged by the newest schema (version
    3) whatever its ``version`` says, and an older or missing version is an error. Without it (a whole
    tree), each file is judged by its own version and an old one is a warning.
    """
    config = config or _DEFAULT
    relpath = relpath.replace("\\", "/").removeprefix("./")
    report = Report(path=relpath, branch=branch_of(relpath))
    found = report.findings
    _check_path(relpath, found)
    text = _decode(data, config, found)
    if text is not None:
        _check_text(text, report, config, require_latest)
    report.findings = [f if f.path else _with_path(f, relpath) for f in config.enabled(found)]
    return report


def _with_path(f: Finding, path: str) -> Finding:
    return replace(f, path=path)


def _check_path(relpath: str, found: list[Finding]) -> None:
    name = relpath.rsplit("/", 1)[-1]
    if name != LEAF_FILE:
        found.append(Finding("leaf-filename", "error", f"leaf file is named {name!r}, not {LEAF_FILE!r}",
                             hint=f"Rename it to {LEAF_FILE}; other names are silently skipped upstream."))
    if branch_of(relpath) not in schema.BRANCHES or relpath.count("/") < 2:
        found.append(Finding("leaf-branch", "error",
                             f"{relpath!r} is not inside a leaf folder of knowledge/, compositional_skills/ "
                             "or foundational_skills/",
                             hint="Move it to <branch>/<topic>/.../<leaf>/qna.yaml."))
    found.extend(leaf_path.check(relpath))


def _decode(data: bytes, config: Config, found: list[Finding]) -> str | None:
    if len(data) > config.max_file_bytes:
        found.append(Finding("file-too-large", "error",
                             f"the file is {len(data):,} bytes; the limit is {config.max_file_bytes:,}",
                             hint="A leaf needs a few KB: keep seeds short, put documents in the document repo."))
        return None
    for bom, name in _BOMS:
        if data.startswith(bom):
            found.append(Finding("encoding", "error", f"the file is {name} (it starts with a {name} byte order mark)",
                                 1, 1, hint="Save the file as UTF-8."))
            return None
    if b"\0" in data:
        found.append(Finding("binary-file", "error", "the file holds NUL bytes: it is binary, not YAML text",
                             hint="Replace it with a UTF-8 text qna.yaml."))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        col = len(data[start:exc.start].decode("utf-8")) + 1  # in characters, like every other column
        found.append(Finding("encoding", "error", f"byte 0x{data[exc.start]:02x} is not valid UTF-8", line, col,
                             hint="Save the file as UTF-8."))
        return None
    return text[1:] if text.startswith("\ufeff") else text


def _check_text(text: str, report: Report, config: Config, require_latest: bool = False) -> None:
    found = report.findings
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for module in TEXT_CHECKS:
        found.extend(module.check(text, lines))
    loaded = load_yaml(text, max_depth=config.max_depth, max_nodes=config.max_nodes)
    found.extend(loaded.findings)
    if loaded.fatal:
        return
    data = loaded.data
    if data is None:
        found.append(Finding("empty-file", "error", "the file is empty",
                             hint="Write the leaf's version, created_by and seed_examples."))
        return
    if not isinstance(data, dict):
        line, col = loaded.marks.get((), (1, 1))
        found.append(Finding("not-a-mapping", "error", "the top level must be a mapping of keys to values",
                             line, col, hint="Start the file with 'version: 3'."))
        return
    report.data = data
    report.marks = loaded.marks
    branch = report.branch
    if branch not in schema.BRANCHES:
        return
    version = _version(data, branch, loaded, found)
    report.version = version
    if version is None:
        return
    truthy = {(f.line, f.column) for f in loaded.findings if f.check == "truthy"}
    judged_by = version
    if version < LATEST:
        found.append(_old_version(data, loaded, version, require_latest))
        if require_latest:
            judged_by = LATEST
    found.extend(f for f in schema.validate(loaded, schema.schema_name(branch, judged_by))
                 if (f.line, f.column) not in truthy and not (judged_by != version and _about_version(f)))
    found.extend(duplicate_seed.check(data, loaded.marks, branch))
    found.extend(word_limits.check(data, loaded.marks, branch, config))


def _about_version(f: Finding) -> bool:
    return f.message.startswith("version:") or "required key 'version'" in f.message


def _old_version(data: dict, loaded, version: int, required: bool) -> Finding:
    line, col = loaded.marks.get(("version",), loaded.marks.get((), (1, 1)))
    what = f"version {version}" if "version" in data else "no version (so version 1)"
    if required:
        return Finding("version", "error", f"this changed leaf has {what}; changed leaves must use the newest "
                       f"schema, version {LATEST} (upstream's rule)", line, col,
                       hint=f"Set 'version: {LATEST}' at the top; skills of versions 2 and 3 have the same shape, "
                       "version 1 needs 'created_by' and five seed examples.")
    return Finding("old-version", "warning", f"the leaf has {what}; the newest is {LATEST}", line, col,
                   hint=f"Accepted as it is, but a pull request that changes this leaf must set 'version: {LATEST}'.")


def _version(data: dict, branch: str, loaded, found: list[Finding]) -> int | None:
    raw = data.get("version", 1)
    line, col = loaded.marks.get(("version",), loaded.marks.get((), (1, 1)))
    if branch == "knowledge" and "version" not in data:
        found.append(Finding("version", "error",
                             "version is missing, so it reads as version 1; minimum supported version is 3",
                             line, col, hint="Add 'version: 3' at the top."))
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        hint = f"Write version: {raw} without quotes." if isinstance(raw, str) and raw.strip().isdigit() \
            else "Write version: 3."
        found.append(Finding("version", "error", f"version must be a whole number, got {raw!r}", line, col,
                             hint=hint))
        return None
    if branch == "knowledge":
        if raw in (1, 2):
            found.append(Finding("version", "error",
                                 f"knowledge version {raw} is not supported; minimum supported version is 3",
                                 line, col, hint="Convert the leaf to version 3 (context + questions_and_answers"
                                 " per seed, document_outline, no task_description)."))
            return None
        if raw != 3:
            found.append(Finding("version", "error", f"unsupported version {raw}; knowledge leaves are version 3",
                                 line, col, hint="Write version: 3."))
            return None
        return 3
    if raw not in (1, 2, 3):
        found.append(Finding("version", "error", f"unsupported version {raw}; skills are version 1, 2 or 3",
                             line, col, hint="Write version: 3."))
        return None
    return raw
