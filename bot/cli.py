"""``labrador bot serve`` and ``labrador bot worker``, added to the ``labrador`` command by entry point.

Secrets never appear here: they are read from the environment by ``labrador.bot.config``, never from argv.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
from dataclasses import replace
from pathlib import Path

from labrador.validators.config import CONFIG_FILE, ConfigError
from labrador.validators.exits import Exit, UsageError, command

from .config import BotSettings, load_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bot", help="the pull-request bot: webhook server and queue workers",
                       description="Run the PR bot. Secrets come from the environment: LABRADOR_WEBHOOK_SECRET, "
                       "LABRADOR_APP_PRIVATE_KEY or LABRADOR_APP_PRIVATE_KEY_FILE; settings from [bot] in "
                       "labrador.toml.")
    bot_sub = p.add_subparsers(dest="bot_command", metavar="COMMAND")
    serve = bot_sub.add_parser("serve", help="answer GitHub webhooks (verify, dedupe, enqueue)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    worker = bot_sub.add_parser("worker", help="run queued jobs (validation, previews, merges)",
                                description="Run queued jobs. SIGTERM lets running jobs finish for shutdown_grace_s "
                                "(default 8 s), then hands the rest back to the queue; SIGINT hands them back at "
                                "once. Every worker also sweeps jobs whose worker died and prunes caches hourly.")
    worker.add_argument("--workers", type=int, default=2, help="jobs at a time in this process (default: 2)")
    worker.add_argument("--worker-type", choices=("thread", "process"), default="thread",
                        help="run jobs in threads or forked processes (default: thread)")
    worker.add_argument("--poll-interval", type=float, metavar="SECONDS", dest="poll_interval",
                        help="longest wait between polls of an idle queue (default: worker_poll_s in [bot], 0.5)")
    for q in (serve, worker):
        q.add_argument("--config", metavar="FILE", type=Path,
                       help=f"settings file (default: ./{CONFIG_FILE} if present)")
        q.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    p.set_defaults(func=run, bot_parser=p)


def _settings(args: argparse.Namespace) -> BotSettings:
    path = args.config
    if path is None and Path(CONFIG_FILE).is_file():
        path = Path(CONFIG_FILE)
    if path is not None and not path.is_file():
        raise ConfigError(f"settings file {path} does not exist")
    return load_settings(path)


@command("bot")
def run(args: argparse.Namespace) -> int:
    if not getattr(args, "bot_command", None):
        args.bot_parser.print_help()
        return Exit.USAGE
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(args)  # a ConfigError is a usage error (exits.command)
    if getattr(args, "poll_interval", None) is not None:
        settings = replace(settings, worker_poll_s=args.poll_interval)
    logging.getLogger("labrador.bot").info("settings: %r", settings)  # secrets are masked by their repr
    from . import worker

    try:
        if args.bot_command == "serve":
            worker.serve(settings, args.host, args.port)
        else:
            if args.workers < 1:
                raise UsageError("--workers must be at least 1")
            worker.run_worker(settings, workers=args.workers, worker_type=args.worker_type,
                              poll_s=settings.worker_poll_s)
    except ValueError as exc:  # a missing secret or a bad queue URL: one line, no traceback
        raise UsageError(str(exc)) from None
    except sqlite3.DatabaseError as exc:  # a corrupt or foreign bot.db: name the file, say what to do
        raise UsageError(f"the bot's database {settings.resolved_queue_url.removeprefix('sqlite:///')} cannot "
                         f"be used ({exc}); move it aside (the bot starts a new one) or restore it from a "
                         "backup") from None
    return Exit.OK
