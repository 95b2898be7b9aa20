"""Starting the two processes: the webhook server and the queue workers. Also the programmatic entry points
for end-to-end tests (``build_app``, ``build_worker``, ``run_worker``, ``serve``).
"""

from __future__ import annotations

import logging
from typing import Any

from .config import BotSettings
from .preview import Previewer, make_previewer
from .queue import JobQueue
from .runner import ForgeFactory, Runner

log = logging.getLogger("labrador.bot.worker")


def build_app(settings: BotSettings, queue: JobQueue | None = None) -> Any:
    """The webhook ASGI app over the configured queue (``queue`` to share one with a test)."""
    from .webhook import create_app

    return create_app(settings, queue or JobQueue(settings))


def build_worker(settings: BotSettings, forge_for: ForgeFactory | None = None, previewer: Previewer | None = None,
                 queue: JobQueue | None = None) -> tuple[JobQueue, Runner]:
    """A queue wired to a runner (jobs execute here) and to the orphan sweep; nothing is started yet.

    ``forge_for`` defaults to the GitHub App forge; ``previewer`` to the trainer with the ``[teacher]`` settings.
    """
    queue = queue or JobQueue(settings)
    if forge_for is None:
        from .github import forge_factory

        if not settings.app_id or not settings.private_key:
            raise ValueError("the worker needs the GitHub App: set LABRADOR_APP_ID and LABRADOR_APP_PRIVATE_KEY_FILE "
                             "(or LABRADOR_APP_PRIVATE_KEY)")
        forge_for = forge_factory(settings)
    if previewer is None:
        previewer = make_previewer(settings.teacher, settings.preview_samples, settings.checker)
    runner = Runner(settings, queue.state, forge_for, previewer, submit=queue.submit)
    runner.queued_ids = queue.queued_ids
    queue.runner = runner
    queue.sweeper = runner.sweep
    return queue, runner


def run_worker(settings: BotSettings, workers: int = 1, worker_type: str = "thread",
               forge_for: ForgeFactory | None = None, previewer: Previewer | None = None,
               poll_s: float | None = None) -> None:
    """Sweep orphaned check runs, then consume jobs until SIGINT/SIGTERM (main thread only).

    ``poll_s``: the longest wait between polls of an idle queue; default ``settings.worker_poll_s``.
    """
    poll_s = settings.worker_poll_s if poll_s is None else poll_s
    if not poll_s > 0:
        raise ValueError(f"--poll-interval / worker_poll_s must be more than 0 seconds, got {poll_s}")
    queue, runner = build_worker(settings, forge_for, previewer)
    ended = runner.sweep()
    if ended:
        log.warning("ended %d orphaned job(s) at start-up", len(ended))
    # SIGTERM (systemd, docker stop) is the graceful signal: running jobs get shutdown_grace_s to finish,
    # then go back to the queue under their own ids (a second SIGTERM, or SIGINT, stops at once: same hand-back)
    queue.consumer(workers=workers, worker_type=worker_type, poll_s=poll_s, graceful_signal="TERM",
                   shutdown_timeout=settings.shutdown_grace_s).run()
    handed = runner.shutdown()
    if handed:
        log.warning("handed %d running job(s) back to the queue", len(handed))


def serve(settings: BotSettings, host: str = "127.0.0.1", port: int = 8080, log_level: str = "info") -> None:
    """Run the webhook app with uvicorn (blocking)."""
    import uvicorn

    from .httpserver import server_config

    config = server_config(build_app(settings), settings.read_timeout_s, host=host, port=port, log_level=log_level)
    uvicorn.Server(config).run()
