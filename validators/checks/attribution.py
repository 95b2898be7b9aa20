"""attribution.txt: who made the seed material and under which licence we may train on it."""

import re
from collections.abc import Iterator

from ..config import Config
from ..findings import Finding

CHECKS = (
    ("attribution", "error", "attribution.txt is missing or empty beside a qna.yaml"),
    ("attribution-license", "error", "attribution.txt names no licence, or one not on the allowed list"),
    ("attribution-fields", "warning", "attribution.txt lacks a title, link, revision or creator line"),
)
FILENAME = "attribution.txt"
_FIELDS = {
    "title": ("title of work", "title"),
    "link": ("link to work", "link", "url"),
    "revision": ("revision",),
    "license": ("license of the work", "licence of the work", "license", "licence", "spdx-license-identifier"),
    "creator": ("creator names", "creator", "creators", "author", "authors"),
}
_LINE = re.compile(r"\s*([A-Za-z][A-Za-z -]*?)\s*:\s*(.*?)\s*$")


def parse(text: str) -> dict[str, tuple[str, int]]:
    """Field name -> (value, line number); unknown lines are ignored (free text is allowed)."""
    fields: dict[str, tuple[str, int]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = _LINE.match(line)
        if not m:
            continue
        label = m.group(1).lower()
        for name, labels in _FIELDS.items():
            if label in labels and name not in fields:
                fields[name] = (m.group(2), n)
    return fields


def check(relpath: str, data: bytes | None, config: Config) -> Iterator[Finding]:
    """``relpath`` is the attribution file's path inside the taxonomy; ``data`` None means missing."""
    if data is None:
        yield Finding("attribution", "error", f"{FILENAME} is missing beside qna.yaml", path=relpath,
                      hint="Add attribution.txt with title, link, revision, licence and creator lines.")
        return
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")  # a byte order mark is not part of the first line
    except UnicodeDecodeError:
        yield Finding("attribution", "error", f"{FILENAME} is not UTF-8 text", path=relpath,
                      hint="Save it as UTF-8.")
        return
    if not text.strip():
        yield Finding("attribution", "error", f"{FILENAME} is empty", 1, 1, path=relpath,
                      hint="Fill in title, link, revision, licence and creator.")
        return
    fields = parse(text)
    lic = fields.get("license")
    allowed = ", ".join(config.licenses)
    if lic is None:
        yield Finding("attribution-license", "error", "no 'License of the work:' line", 1, 1, path=relpath,
                      hint=f"Add one with an SPDX id; allowed: {allowed}.")
    elif lic[0] not in config.licenses:
        close = [x for x in config.licenses if x.lower() == lic[0].lower()]
        hint = f"Write it as {close[0]!r}." if close else f"Allowed licences: {allowed}."
        yield Finding("attribution-license", "error", f"licence {lic[0]!r} is not on the allowed list",
                      lic[1], 1, path=relpath, hint=hint)
    for name in ("title", "link", "revision", "creator"):
        if name not in fields or not fields[name][0]:
            label = _FIELDS[name][0].capitalize()
            yield Finding("attribution-fields", "warning", f"no '{label}:' line", 1, 1, path=relpath,
                          hint=f"Add '{label}: ...'.")
