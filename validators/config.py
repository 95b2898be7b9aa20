"""Checker settings: defaults that match InstructLab's documented limits, overridable in ``labrador.toml``."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

CONFIG_FILE = "labrador.toml"

DEFAULT_LICENSES = (
    "CC0-1.0",
    "CDLA-Permissive-2.0",
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "Apache-2.0",
    "MIT",
)


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class Config:
    # word limits documented (but never enforced) upstream
    max_context_words: int = 500
    max_qna_words: int = 250
    max_skill_words: int = 2300
    # input bounds: hostile files get a finding, not a hang
    max_file_bytes: int = 256 * 1024
    max_depth: int = 64
    max_nodes: int = 100_000
    licenses: tuple[str, ...] = DEFAULT_LICENSES
    # documents
    allowed_hosts: tuple[str, ...] = ("github.com", "gitlab.com", "huggingface.co")
    allow_private_hosts: bool = False
    self_urls: tuple[str, ...] = ()
    cache_dir: str = ""
    disabled_checks: tuple[str, ...] = field(default_factory=tuple)
    # documents: let file:// repo URLs through document-repo (tests, air-gapped mirrors); never on a
    # public bot or CI, where a leaf could then make the checker read the machine it runs on
    allow_file_urls: bool = False

    @cached_property
    def _fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def fingerprint(self) -> str:
        """A stable hash of every setting, so cached verdicts die when settings change (computed once)."""
        return self._fingerprint

    def repo_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        from os import environ

        base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "labrador"


_SECTIONS = ("check", "documents")


def load_config(path: Path | None) -> Config:
    """Read ``[check]`` and ``[documents]`` from a labrador.toml; unknown keys are errors, not silence."""
    if path is None or not path.is_file():
        return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}. Fix the syntax or delete the file.") from exc
    known = {f.name: f for f in fields(Config)}
    values: dict[str, Any] = {}
    for section, table in raw.items():
        if section not in _SECTIONS:
            if section in ("generate", "bot", "train", "nightly"):
                continue  # other packages' settings
            raise ConfigError(f"{path}: unknown section [{section}]; expected one of {', '.join(_SECTIONS)}")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        for key, value in table.items():
            if key not in known:
                raise ConfigError(f"{path}: unknown key '{key}' in [{section}]; known keys: {', '.join(known)}")
            default = getattr(Config(), key)
            if isinstance(default, tuple):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ConfigError(f"{path}: [{section}] {key} must be a list of strings")
                value = tuple(value)
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"{path}: [{section}] {key} must be true or false")
            elif isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise ConfigError(f"{path}: [{section}] {key} must be a positive integer")
            elif not isinstance(value, str):
                raise ConfigError(f"{path}: [{section}] {key} must be a string")
            values[key] = value
    cfg = replace(Config(), **values)
    if cfg.cache_dir and not Path(cfg.cache_dir).is_absolute() and not cfg.cache_dir.startswith("~"):
        cfg = replace(cfg, cache_dir=str((path.parent / cfg.cache_dir).resolve()))
    return cfg


def find_config(start: Path) -> Path | None:
    """The nearest labrador.toml at or above ``start``."""
    start = start.resolve()
    for d in (start, *start.parents):
        candidate = d / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None
