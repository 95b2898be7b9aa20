"""mkdocs hook: ``<!-- labrador-help: COMMAND -->`` in a page becomes that command's real ``--help`` output, so
the command reference can never drift from the code. Needs Labrador installed where the site is built."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

PLACEHOLDER = re.compile(r"<!-- labrador-help:((?: [a-z]+)*) -->")  # no command: the top-level help


def _help(command: str) -> str:
    exe = Path(sys.executable).with_name("labrador")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-c",
                                            "import sys; from labrador.validators.cli import main; sys.exit(main())"]
    proc = subprocess.run([*argv, *command.split(), "--help"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "100", "NO_COLOR": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"labrador {command} --help failed: {proc.stderr.strip()}")
    return proc.stdout.rstrip()


def on_page_markdown(markdown: str, **_: object) -> str:
    def block(m: re.Match[str]) -> str:
        command = m.group(1).strip()
        shown = " ".join(["labrador", *command.split(), "--help"])
        return f"```text\n$ {shown}\n{_help(command)}\n```"

    return PLACEHOLDER.sub(block, markdown)
