"""Content-hash cache of verdicts: an unchanged leaf under unchanged settings and code is not re-checked."""

from __future__ import annotations

import contextlib
import hashlib
import json
from functools import cache as _memo
from pathlib import Path

from .atomic import atomic_write
from .config import Config
from .findings import Finding


@_memo
def code_fingerprint() -> str:
    """Hash of the checker's own source and schemas: a new checker never trusts an old verdict."""
    h = hashlib.sha256()
    base = Path(__file__).parent
    for p in sorted(base.rglob("*")):
        if p.suffix in (".py", ".json") and "__pycache__" not in p.parts:
            h.update(p.relative_to(base).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def leaf_key(relpath: str, qna: bytes | None, attribution: bytes | None, names: list[str], config: Config,
             mode: str = "") -> str:
    """``mode``: how the leaf is judged (newest schema required? documents checked?): a verdict given in one
    mode is never reused in another."""
    h = hashlib.sha256()
    for part in (code_fingerprint(), config.fingerprint(), relpath, "\0".join(names), mode):
        h.update(part.encode())
        h.update(b"\0")
    for blob in (qna, attribution):
        h.update(b"-" if blob is None else hashlib.sha256(blob).digest())
    return h.hexdigest()


class CheckCache:
    """One JSON file of key -> findings, loaded once and written atomically at the end of a run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, list[dict]] = {}
        self._dirty = False
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                self._data = loaded
        except (OSError, ValueError):
            pass  # a missing or corrupt cache is an empty cache

    def get(self, key: str) -> list[Finding] | None:
        rows = self._data.get(key)
        if rows is None:
            return None
        try:
            return [Finding.from_dict(r) for r in rows]
        except (KeyError, TypeError):
            return None

    def put(self, key: str, findings: list[Finding]) -> None:
        self._data[key] = [f.to_dict() for f in findings]
        self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        with contextlib.suppress(OSError):  # a cache that cannot be written is only a slower next run
            atomic_write(self.path, json.dumps(self._data, separators=(",", ":")).encode("utf-8"))
        self._dirty = False


def default_cache_path(taxonomy: Path, config: Config) -> Path:
    tag = hashlib.sha256(str(taxonomy.resolve()).encode()).hexdigest()[:16]
    return config.repo_cache_dir() / "check" / f"{tag}.json"
