"""Schema validation with findings placed on the exact node, in words a contributor can act on."""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from .findings import Finding
from .yamlload import Loaded

if TYPE_CHECKING:  # jsonschema costs ~65 ms to import; a run served from the cache never needs it
    from jsonschema import Draft202012Validator, ValidationError

CHECK_ID = "schema"
SKILL_BRANCHES = ("compositional_skills", "foundational_skills")
BRANCHES = ("knowledge", *SKILL_BRANCHES)

_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "array": "a list",
    "object": "a mapping of keys to values",
}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "nothing (null)"
    if isinstance(value, int):
        return f"the number {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


@cache
def validator(name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    text = resources.files(__package__).joinpath("schemas", f"{name}.json").read_text(encoding="utf-8")
    return Draft202012Validator(json.loads(text))


def schema_name(branch: str, version: int) -> str:
    return f"knowledge_v{version}" if branch == "knowledge" else f"skills_v{version}"


def dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


MAX_FINDINGS = 100  # a hostile 200 KB list would otherwise yield 100,000 findings and take seconds


def validate(loaded: Loaded, name: str) -> list[Finding]:
    v = validator(name)
    findings: list[Finding] = []
    for err in v.iter_errors(loaded.data):
        if len(findings) >= MAX_FINDINGS:
            findings.append(Finding(CHECK_ID, "error", f"more schema errors not shown (stopped after {MAX_FINDINGS})",
                                    hint="Fix the errors above and check again."))
            break
        findings.extend(_to_findings(err, loaded))
    unknown = {(f.line, f.column) for f in findings if "unknown key" in f.message}
    return [f for f in findings if not ("' is here instead" in f.message and (f.line, f.column) in unknown)]


def _at(loaded: Loaded, path: tuple) -> tuple[int, int]:
    while path and path not in loaded.marks:
        path = path[:-1]
    return loaded.marks.get(path, (1, 1))


def _to_findings(err: ValidationError, loaded: Loaded) -> list[Finding]:
    path = tuple(err.absolute_path)
    where = dotted(path)
    line, col = _at(loaded, path)
    kind = err.validator
    if kind == "required":
        missing = err.message.split("'")[1] if "'" in err.message else str(err.validator_value)
        return [_missing_key(err.instance, missing, where, path, line, col, loaded)]
    if kind == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        out = []
        for key in err.instance:
            if key in allowed:
                continue
            kline, kcol = loaded.key_marks.get((*path, key), (line, col))
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"Did you mean '{close[0]}'?" if close else f"Allowed keys here: {', '.join(allowed)}."
            if key == "task_description" and "document" in allowed:
                hint = "Knowledge leaves of version 3 have no task_description: remove it."
            out.append(Finding(CHECK_ID, "error", f"{where}: unknown key '{key}'", kline, kcol, hint=hint))
        return out
    if kind == "type":
        want = _TYPE_WORDS.get(err.validator_value, err.validator_value)
        got = _describe(err.instance)
        hint = "Quote the value to make it text." if want == "text" and not isinstance(err.instance, (list, dict)) \
            else ""
        if err.instance is None:
            key = path[-1] if path and isinstance(path[-1], str) else "the key"
            hint = f"Write the text after '{key}:' on the same line, or on indented lines below it after '{key}: |-'."
        return [Finding(CHECK_ID, "error", f"{where}: expected {want}, got {got}", line, col, hint=hint)]
    if kind == "minLength":
        return [Finding(CHECK_ID, "error", f"{where}: must not be empty", line, col, hint="Write the text here.")]
    if kind == "minItems":
        have = len(err.instance) if isinstance(err.instance, list) else 0
        return [
            Finding(CHECK_ID, "error", f"{where}: needs at least {err.validator_value} items, has {have}",
                    line, col, hint=f"Add {err.validator_value - have} more.")
        ]
    if kind == "const":
        return [Finding(CHECK_ID, "error", f"{where}: must be {err.validator_value!r}, got {err.instance!r}",
                        line, col)]
    message = err.message if len(err.message) <= 160 else err.message[:157] + "..."
    return [Finding(CHECK_ID, "error", f"{where}: {message}", line, col)]


def _missing_key(instance: Any, missing: str, where: str, path: tuple, line: int, col: int, loaded: Loaded) -> Finding:
    """A required key is missing: say if it is misspelled, or swallowed into the previous value by indentation."""
    message = f"{where}: required key '{missing}' is missing"
    hint = f"Add '{missing}:' here."
    if isinstance(instance, dict):
        close = difflib.get_close_matches(missing, [str(k) for k in instance if k != missing], n=1, cutoff=0.6)
        if close:
            kline, kcol = loaded.key_marks.get((*path, close[0]), (line, col))
            return Finding(CHECK_ID, "error", f"{message}; '{close[0]}' is here instead", kline, kcol,
                           hint=f"Did you mean '{missing}'? Rename '{close[0]}' to '{missing}'.")
        for key, value in instance.items():
            if isinstance(value, str) and f"{missing}:" in value:
                vline, vcol = loaded.marks.get((*path, key), (line, col))
                return Finding(CHECK_ID, "error", f"{message}: '{missing}:' is indented further than '{key}:', so "
                               f"YAML read it as part of the {key} text", vline, vcol,
                               hint=f"Indent '{missing}:' exactly like '{key}:' (same column).")
    return Finding(CHECK_ID, "error", message, line, col, hint=hint)
