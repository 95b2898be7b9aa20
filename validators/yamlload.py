"""Parse YAML bytes into plain data plus the line:column of every node, safely.

Built on libyaml's event stream (PyYAML's C parser) instead of ``compose``: the event
parser keeps its own stack, so hostile nesting cannot overflow the C stack, and we see
anchors, aliases, duplicate keys and plain-scalar booleans as they stream past, with the
parser's own marks. Alias expansion is counted, so a "billion laughs" file is refused in
time proportional to its size.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from .findings import Finding

try:  # the C parser is a hard requirement for speed, but stay correct without it
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Path = tuple[str | int, ...]
Mark = tuple[int, int]

_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_KNOWN_TAGS = {
    _STR,
    _BOOL,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:binary",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
}
_constructor = yaml.SafeLoader.__new__(yaml.SafeLoader)
yaml.constructor.SafeConstructor.__init__(_constructor)


@dataclass
class Loaded:
    data: Any = None
    marks: dict[Path, Mark] = field(default_factory=dict)
    key_marks: dict[Path, Mark] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    fatal: bool = False


class _Stop(Exception):
    def __init__(self, finding: Finding):
        self.finding = finding


class _Frame:
    __slots__ = ("obj", "path", "key", "key_mark", "anchor", "start_count", "is_map")

    def __init__(self, obj: Any, path: Path, anchor: str | None, start_count: int) -> None:
        self.obj = obj
        self.path = path
        self.is_map = isinstance(obj, dict)
        self.key: Any = _NO_KEY
        self.key_mark: Mark = (0, 0)
        self.anchor = anchor
        self.start_count = start_count


_NO_KEY = object()


def _mark(event: Any) -> Mark:
    m = event.start_mark
    return (m.line + 1, m.column + 1)


def load_yaml(text: str, *, max_depth: int = 64, max_nodes: int = 100_000) -> Loaded:
    """Load one YAML document. Never raises for bad input: problems come back as findings."""
    out = Loaded()
    late: list[Finding] = []  # findings whose positions are already counted in '\n' lines
    try:
        _load(text, out, max_depth, max_nodes)
    except _Stop as stop:
        out.findings.append(stop.finding)
        out.fatal = True
        out.data = None
    except yaml.MarkedYAMLError as exc:
        if _is_parser_depth_stop(exc) and exc.problem_mark is not None:
            # libyaml >= 0.2.5 stops deep nesting itself (at 1,000 levels), scanning ahead of the events we
            # count. Re-read the text up to its stop: our own limit then fires on the exact node, so every
            # PyYAML/libyaml gives the same finding at the same place.
            return _depth_finding(text, exc.problem_mark, max_depth, max_nodes)
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        out.findings.append(
            Finding(
                "yaml-syntax",
                "error",
                f"YAML syntax error: {problem}{context}",
                line,
                col,
                hint="Check indentation and quoting near this position; text with ': ' or '#' "
                "needs quotes or a block scalar (>-).",
            )
        )
        out.fatal = True
        out.data = None
    except yaml.YAMLError as exc:  # reader errors (control characters) carry a position too
        pos = getattr(exc, "position", None)
        line, col = _line_col(text, pos) if pos is not None else (0, 0)
        if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
            message = f"YAML error: unacceptable character U+{exc.character:04X}: {exc.reason}"
            hint = "Delete the invisible control character at this position."
        else:
            message, hint = f"YAML error: {exc}", ""
        late.append(Finding("yaml-syntax", "error", message, line, col, hint=hint))
        out.fatal = True
        out.data = None
    except UnicodeError as exc:  # text that cannot be UTF-8 (lone surrogates); check_file never passes it
        line, col = _line_col(text, exc.start) if isinstance(exc, UnicodeEncodeError) else (0, 0)
        late.append(Finding("encoding", "error", "the text is not valid Unicode", line, col))
        out.fatal = True
        out.data = None
    if _ODD_BREAK.search(text):
        _relines(text, out)
    out.findings.extend(late)
    return out


# libyaml also breaks lines at a lone CR, NEL, LS and PS; editors, git and GitHub count only '\n'
_ODD_BREAK = re.compile("\r(?!\n)|[\x85\u2028\u2029]")
_YAML_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def _relines(text: str, out: Loaded) -> None:
    """Re-count the parser's line:column marks in '\n'-separated lines, like every other check."""
    starts = [0, *(m.end() for m in _YAML_BREAK.finditer(text))]
    newlines = [m.start() for m in re.finditer("\n", text)]

    def conv(mark: Mark) -> Mark:
        line, col = mark
        if line > len(starts):  # libyaml puts the end of a file without a final newline on a line of its own
            return line - (len(starts) - len(newlines) - 1), col
        if line < 1 or col < 1:
            return mark
        i = starts[line - 1] + col - 1
        n = bisect_left(newlines, i)
        return n + 1, i - (newlines[n - 1] + 1 if n else 0) + 1

    def first_line(m: re.Match) -> str:  # a yaml line never holds a '\n': its start gives its '\n' line
        return f"(first at line {conv((int(m[1]), 1))[0]})"

    def moved(f: Finding) -> Finding:
        if not f.line:
            return f
        line, col = conv((f.line, f.column))
        return replace(f, line=line, column=col, message=re.sub(r"\(first at line (\d+)\)", first_line, f.message))

    out.marks = {k: conv(v) for k, v in out.marks.items()}
    out.key_marks = {k: conv(v) for k, v in out.key_marks.items()}
    out.findings = [moved(f) for f in out.findings]


def _is_parser_depth_stop(exc: yaml.MarkedYAMLError) -> bool:
    return "nesting depth" in (exc.problem or "")


def _depth_finding(text: str, mark: Any, max_depth: int, max_nodes: int) -> Loaded:
    prefix = Loaded()
    try:
        _load(text[: mark.index], prefix, max_depth, max_nodes)
    except _Stop as stop:
        if stop.finding.check == "nesting-too-deep":
            return Loaded(findings=[stop.finding], fatal=True)
    except yaml.YAMLError:
        pass
    # our limit is above the parser's: report the parser's own stop, as the same check
    line, col = mark.line + 1, mark.column + 1
    finding = Finding("nesting-too-deep", "error", "structure is nested too deep for the YAML parser", line, col,
                      hint="A qna.yaml needs only a few levels; flatten the structure.")
    return Loaded(findings=[finding], fatal=True)


def _line_col(text: str, pos: int) -> Mark:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def _load(text: str, out: Loaded, max_depth: int, max_nodes: int) -> None:
    loader = _Loader(text)
    anchors: dict[str, tuple[Any, int]] = {}
    stack: list[_Frame] = []
    count = 0  # nodes, with aliases counted at their expanded size
    documents = 0
    root_set = False
    try:
        while True:
            event = loader.get_event()
            if event is None:
                break
            kind = type(event)
            if kind is yaml.ScalarEvent:
                count += 1
                value = _scalar(loader, event, out)
                _place(stack, out, value, event, count, max_nodes)
                if event.anchor:
                    anchors[event.anchor] = (value, 1)
                if not stack and not root_set:
                    out.data, root_set = value, True
                    out.marks[()] = _mark(event)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                count += 1
                if len(stack) >= max_depth:
                    line, col = _mark(event)
                    raise _Stop(
                        Finding(
                            "nesting-too-deep",
                            "error",
                            f"structure is nested more than {max_depth} levels deep",
                            line,
                            col,
                            hint="A qna.yaml needs only a few levels; flatten the structure.",
                        )
                    )
                _check_tag(event, out)
                obj: Any = {} if kind is yaml.MappingStartEvent else []
                path = _place(stack, out, obj, event, count, max_nodes)
                if not stack and not root_set:
                    out.data, root_set = obj, True
                    out.marks[()] = _mark(event)
                    path = ()
                stack.append(_Frame(obj, path, event.anchor, count))
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                frame = stack.pop()
                if frame.anchor:
                    anchors[frame.anchor] = (frame.obj, count - frame.start_count + 1)
            elif kind is yaml.AliasEvent:
                target = anchors.get(event.anchor)
                if target is None:  # libyaml reports unknown aliases itself; belt and braces
                    line, col = _mark(event)
                    raise _Stop(Finding("yaml-syntax", "error", f"unknown alias *{event.anchor}", line, col))
                value, size = target
                count += size
                _place(stack, out, value, event, count, max_nodes)
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    line, col = _mark(event)
                    raise _Stop(
                        Finding(
                            "multiple-documents",
                            "error",
                            "the file holds more than one YAML document",
                            line,
                            col,
                            hint="Remove the '---' separator and merge the documents into one.",
                        )
                    )
    finally:
        loader.dispose()


def _check_tag(event: Any, out: Loaded) -> None:
    tag = event.tag
    if tag and tag not in _KNOWN_TAGS and not event.implicit:
        line, col = _mark(event)
        raise _Stop(
            Finding("yaml-tag", "error", f"unsupported YAML tag {tag!r}", line, col, hint="Remove the tag.")
        )


def _scalar(loader: Any, event: Any, out: Loaded) -> Any:
    value = event.value
    if event.tag and event.tag not in ("!", _STR) and event.tag not in _KNOWN_TAGS:
        line, col = _mark(event)
        raise _Stop(
            Finding("yaml-tag", "error", f"unsupported YAML tag {event.tag!r}", line, col, hint="Remove the tag.")
        )
    if event.style or event.tag in ("!", _STR):
        return value  # quoted or block scalars are text
    tag = event.tag or loader.resolve(yaml.ScalarNode, value, event.implicit)
    if tag == _STR:
        return value
    if tag == _BOOL and not event.tag and value.lower() not in ("true", "false"):
        line, col = _mark(event)
        out.findings.append(
            Finding(
                "truthy",
                "error",
                f"unquoted {value!r} is read as the boolean {value.lower() in ('yes', 'y', 'on')}, not as text",
                line,
                col,
                hint=f'Quote it: "{value}".',
            )
        )
    node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark)
    try:
        return _constructor.construct_object(node, deep=True)
    except Exception:  # a tagged scalar the constructor chokes on (!!bool foo, !!timestamp x) is text
        return value
    finally:  # the shared constructor memoizes every node it builds: forget them, or each load leaks
        _constructor.constructed_objects.clear()
        _constructor.recursive_objects.clear()


def _place(stack: list[_Frame], out: Loaded, value: Any, event: Any, count: int, max_nodes: int) -> Path:
    if count > max_nodes:
        line, col = _mark(event)
        raise _Stop(
            Finding(
                "too-many-nodes",
                "error",
                f"the document expands to more than {max_nodes} nodes"
                + (" through aliases (a 'billion laughs' file)" if type(event) is yaml.AliasEvent else ""),
                line,
                col,
                hint="Write the content out plainly; anchors and aliases are not needed in a qna.yaml.",
            )
        )
    if not stack:
        return ()
    frame = stack[-1]
    if frame.is_map:
        if frame.key is _NO_KEY:
            mark = _mark(event)
            if isinstance(value, (dict, list)):
                raise _Stop(
                    Finding("yaml-syntax", "error", "a mapping key must be plain text", *mark,
                            hint="Use a simple word as the key.")
                )
            key = value
            if key in frame.obj:
                first = out.key_marks.get((*frame.path, key), (0, 0))
                out.findings.append(
                    Finding(
                        "duplicate-key",
                        "error",
                        f"key {key!r} is defined twice (first at line {first[0]}); the first value would be lost",
                        *mark,
                        hint="Remove one of the two, or merge their contents.",
                    )
                )
            frame.key, frame.key_mark = key, mark
            return ()
        key = frame.key
        path = (*frame.path, key)
        frame.obj[key] = value
        out.key_marks[path] = frame.key_mark
        out.marks[path] = _mark(event)
        frame.key = _NO_KEY
        return path
    path = (*frame.path, len(frame.obj))
    frame.obj.append(value)
    out.marks[path] = _mark(event)
    return path
