"""The webhook's HTTP server: uvicorn, with a bound on how long a client may take to send its request.

Why: uvicorn waits forever for the rest of a request's headers, so a few hundred half-sent requests hold a
few hundred connections open (slowloris). Here a connection that has not sent a complete request head
within ``read_timeout_s`` of connecting (or of its previous answer) is closed with one log line; the body
has its own bound in the app (:func:`labrador.bot.webhook.read_body`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("labrador.bot.webhook")


def bounded_protocol(read_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing connections whose request head is late."""

    class BoundedH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()  # the next request on a kept-alive connection gets the same bound

        def connection_lost(self, exc: Exception | None) -> None:
            timer = getattr(self, "_head_timer", None)
            if timer is not None:
                timer.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            timer = getattr(self, "_head_timer", None)
            if timer is not None:
                timer.cancel()
            self._armed_cycle = self.cycle
            self._head_timer = self.loop.call_later(read_timeout_s, self._head_late)

        def _head_late(self) -> None:
            waiting = self.cycle is self._armed_cycle and (self.cycle is None or self.cycle.response_complete)
            if waiting and not self.transport.is_closing():
                peer = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
                log.info("closed the connection of %s: no complete request within %.0f s", peer, read_timeout_s)
                self.transport.close()

    return BoundedH11Protocol


def server_config(app: Any, read_timeout_s: float, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration the bot serves with (tests use it too, so they run what production runs)."""
    options.setdefault("access_log", False)
    options.setdefault("proxy_headers", False)
    return uvicorn.Config(app, http=bounded_protocol(read_timeout_s), **options)
