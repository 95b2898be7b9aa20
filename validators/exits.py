"""How every ``labrador`` command ends: one exit-status enum, one error path, one "install the extra" check.

Why one place: users and scripts read the status (0 ok, 1 failed or regressed, 2 usage) and the one error line,
``labrador COMMAND: error: …``, the same way whichever package added the command.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable, Iterable
from enum import IntEnum
from typing import Any

from .errors import ConfigError


class Exit(IntEnum):
    OK = 0  # done; a night promoted or had nothing to do; no finding
    FAILED = 1  # the command ran and the answer is no: findings, a refused night, a regressed leaf, a failed step
    USAGE = 2  # it could not run: bad arguments, settings or input, a missing extra


class CommandError(Exception):
    """The command ran and failed: one line on stderr, exit status 1."""

    exit = Exit.FAILED


class UsageError(CommandError):
    """Bad arguments, settings or environment: one line on stderr, exit status 2."""

    exit = Exit.USAGE


def report(command: str, exc: CommandError) -> int:
    print(f"labrador {command}: error: {exc}", file=sys.stderr)
    return int(exc.exit)


def command(name: str) -> Callable[[Callable[[Any], int]], Callable[[Any], int]]:
    """A command's body, with its :class:`CommandError` printed as the one error line and returned as the status;
    a settings file that cannot be used (:class:`ConfigError`, every line of it) is a usage error."""
    def wrap(body: Callable[[Any], int]) -> Callable[[Any], int]:
        @functools.wraps(body)
        def run(args: Any) -> int:
            try:
                return int(body(args))
            except CommandError as exc:
                return report(name, exc)
            except ConfigError as exc:
                return report(name, UsageError(str(exc)))
        return run
    return wrap


TRAIN_MODULES = ("torch", "transformers", "accelerate")
SDG_MODULES = ("httpx", "jinja2", "datasketch", "semchunk", "tokenizers")


def require_extra(extra: str, modules: Iterable[str] = TRAIN_MODULES) -> None:
    """Refuse (a :class:`UsageError`) when a module of ``extra`` is not installed, saying what to install."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        first = " (install torch first: pip install torch)" if extra == "train" else ""
        raise UsageError(f"this needs the [{extra}] extra ({', '.join(missing)} missing): "
                         f"pip install 'labrador-lab[{extra}]'{first}")
