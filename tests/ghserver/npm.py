"""Locate (and if needed install) the npm packages that pin the server to GitHub's real API.

The OpenAPI description and the recorded webhook payloads come from npm (`@octokit/openapi`,
`@octokit/webhooks-examples`) rather than being copied into the repo, so they can be refreshed
without anyone hand-editing schemas. CI installs them with :func:`install_command`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

PACKAGES = ("@octokit/openapi", "@octokit/webhooks-examples")
REPO_ROOT = Path(__file__).resolve().parents[2]
_lock = threading.Lock()


class NpmPackageMissing(RuntimeError):
    """The spec packages are not installed and could not be installed automatically."""


def npm_dir() -> Path:
    """Folder given to `npm --prefix`; `LABRADOR_NPM_DIR` overrides the default `.cache/npm`."""
    return Path(os.environ.get("LABRADOR_NPM_DIR") or REPO_ROOT / ".cache" / "npm")


def install_command(prefix: Path | None = None) -> list[str]:
    """The exact command CI runs (also used for the automatic install)."""
    return ["npm", "install", "--no-save", "--prefix", str(prefix or npm_dir()), *PACKAGES]


def package_dir(name: str) -> Path:
    """Path of an installed package, installing all of :data:`PACKAGES` on first use if missing."""
    path = npm_dir() / "node_modules" / name
    if not (path / "package.json").exists():
        ensure_installed()
    return path


def ensure_installed() -> None:
    """Install the packages once per process when absent; fail loudly (with the command) otherwise."""
    with _lock:
        prefix = npm_dir()
        if all((prefix / "node_modules" / p / "package.json").exists() for p in PACKAGES):
            return
        cmd = install_command(prefix)
        if shutil.which("npm") is None:
            raise NpmPackageMissing(f"npm not found; install the GitHub API spec with: {' '.join(cmd)}")
        prefix.mkdir(parents=True, exist_ok=True)
        if prefix.is_relative_to(REPO_ROOT) and not (prefix / ".gitignore").exists():
            (prefix / ".gitignore").write_text("*\n")  # self-ignoring: never commit 400 MB of specs
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise NpmPackageMissing(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
