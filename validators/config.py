"""Checker settings: defaults that match InstructLab's documented limits, overridable in ``labrador.toml``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .settings import OWN_SECTIONS, ConfigError, check_sections, section_values  # noqa: F401 - ConfigError: re-exported for callers

CONFIG_FILE = "labrador.toml"

if TYPE_CHECKING:  # the bounded types of these keys (read by validators.settings)
    from .typed import Flag, Positive, Text, Texts

DEFAULT_LICENSES = (
    "CC0-1.0",
    "CDLA-Permissive-2.0",
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "Apache-2.0",
    "MIT",
)


@dataclass(frozen=True)
class Config:
    # word limits documented (but never enforced) upstream
    max_context_words: Positive = 500
    max_qna_words: Positive = 250
    max_skill_words: Positive = 2300
    # the same limits in characters: a text without spaces is one "word" (a 220 KB seed passed the word limits)
    max_context_chars: Positive = 5000
    max_qna_chars: Positive = 2500
    max_skill_chars: Positive = 23000
    # input bounds: hostile files get a finding, not a hang
    max_file_bytes: Positive = 256 * 1024
    max_depth: Positive = 64
    max_nodes: Positive = 100_000
    licenses: Texts = DEFAULT_LICENSES
    # documents
    allowed_hosts: Texts = ("github.com", "gitlab.com", "huggingface.co")
    allow_private_hosts: Flag = False
    self_urls: Texts = ()
    cache_dir: Text = ""
    disabled_checks: Texts = field(default_factory=tuple)
    # documents: let file:// repo URLs through document-repo (tests, air-gapped mirrors); never on a
    # public bot or CI, where a leaf could then make the checker read the machine it runs on
    allow_file_urls: Flag = False

    @cached_property
    def _fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def enabled(self, findings: list) -> list:
        """``findings`` without those of ``disabled_checks``: the one place that rule is applied."""
        return [f for f in findings if f.check not in self.disabled_checks] if self.disabled_checks else findings

    def fingerprint(self) -> str:
        """A stable hash of every setting, so cached verdicts die when settings change (computed once)."""
        return self._fingerprint

    def repo_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        from os import environ

        base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "labrador"


def load_config(path: Path | None) -> Config:
    """Read ``[check]`` and ``[documents]`` from a labrador.toml through the one settings loader; unknown
    sections and keys are errors, not silence."""
    if path is None or not path.is_file():
        return Config()
    check_sections(path)
    values: dict[str, Any] = {}
    for section in OWN_SECTIONS:
        values.update(section_values(path, section, Config(), paths=("cache_dir",)))
    return replace(Config(), **values)


def find_config(start: Path) -> Path | None:
    """The nearest labrador.toml at or above ``start``."""
    start = start.resolve()
    for d in (start, *start.parents):
        candidate = d / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None
