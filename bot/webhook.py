"""The webhook app (starlette): verify, dedupe, route, enqueue, answer 202, in milliseconds.

Order matters: the raw body is read (bounded) and its HMAC checked before anything else looks at it; JSON is
parsed only once verified; the delivery id is claimed durably so a replay queues nothing; work happens in the
queue, never here.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from . import shapes
from .config import BotSettings
from .queue import JobQueue
from .routing import route
from .state import SqliteState

log = logging.getLogger("labrador.bot.webhook")
DELIVERY = "delivery"
BODY = "body"


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """``X-Hub-Signature-256: sha256=<hex>`` over the raw body, compared in constant time."""
    if not secret or not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode("ascii", "replace"))


class TooLarge(Exception):
    pass


class Disconnected(Exception):
    pass


class TooSlow(Exception):
    pass


async def read_body(request: Request, limit: int, timeout_s: float = 10.0) -> bytes:
    """The raw body, refusing more than ``limit`` bytes whatever Content-Length claims; a client that goes
    away mid-body raises :class:`Disconnected`, one that takes over ``timeout_s`` :class:`TooSlow` (each one
    log line, not a traceback)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    from starlette.requests import ClientDisconnect

    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge
                chunks.append(chunk)
    except ClientDisconnect:
        raise Disconnected from None
    except TimeoutError:
        raise TooSlow from None
    return b"".join(chunks)


def create_app(settings: BotSettings, queue: JobQueue) -> Starlette:
    """The ASGI app. ``queue`` only enqueues here; workers run the jobs."""
    secret = settings.webhook_secret.reveal().encode()
    if not secret:
        raise ValueError("LABRADOR_WEBHOOK_SECRET is not set: refusing to accept unsigned webhooks")
    state = queue.state
    # SQLite takes one writer at a time, and a writer that finds it busy sleeps (1, 2, 5, 10... ms) before
    # trying again: with a thread per request, writers kept colliding and acknowledgements took seconds at
    # 200 deliveries/s. So SQLite writes go through one thread, first come first served.
    writer = ThreadPoolExecutor(1, thread_name_prefix="labrador-webhook") if isinstance(state, SqliteState) else None

    def accept(event: str, delivery: str, payload: dict[str, Any], digest: str = "") -> tuple[int, dict[str, Any]]:
        """Blocking part (storage writes), run in a thread: dedupe, remember heads, enqueue."""
        if delivery and not state.claim(DELIVERY, delivery, settings.delivery_ttl_s):
            return 200, {"status": "duplicate", "delivery": delivery}
        # the delivery id is not covered by the signature: a captured body replayed under a new id is the same
        # delivery, recognised by the hash of the signed body
        if digest and not state.claim(BODY, digest, settings.delivery_ttl_s):
            state.release(DELIVERY, delivery)
            return 200, {"status": "duplicate", "delivery": delivery, "why": "the same signed body was seen before"}
        try:
            routed = route(event, payload, state.head_at, delivery)
            if routed.head is not None:
                state.record_head(*routed.head)
            queued = [job.key for job in routed.jobs if queue.submit(job)]
        except Exception:
            if delivery:
                state.release(DELIVERY, delivery)  # let GitHub redeliver it
            if digest:
                state.release(BODY, digest)
            raise
        if not routed.jobs:
            return 200, {"status": routed.reason or "ignored"}
        coalesced = len(routed.jobs) - len(queued)
        return 202, {"status": "queued", "jobs": queued, "coalesced": coalesced}

    async def webhook(request: Request) -> JSONResponse | PlainTextResponse:
        try:
            body = await read_body(request, settings.max_body_bytes, settings.read_timeout_s)
        except TooLarge:
            return PlainTextResponse("payload too large", status_code=413)
        except Disconnected:
            log.info("a client disconnected before sending the whole body")
            return PlainTextResponse("incomplete body", status_code=400)
        except TooSlow:
            log.info("a client took more than %.0f s to send its body: answered 408", settings.read_timeout_s)
            return PlainTextResponse("request body too slow", status_code=408, headers={"Connection": "close"})
        if not verify_signature(secret, body, request.headers.get("x-hub-signature-256")):
            log.warning("rejected a webhook with a bad or missing signature")
            return PlainTextResponse("bad signature", status_code=401)
        event = request.headers.get("x-github-event", "")
        delivery = request.headers.get("x-github-delivery", "")[:100]
        if not delivery.strip():
            log.warning("rejected a signed webhook without an X-GitHub-Delivery id")
            return PlainTextResponse("missing X-GitHub-Delivery", status_code=400)
        digest = hashlib.sha256(body).hexdigest()
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            log.warning("rejected delivery %s: the body is not JSON (or nests too deep)", delivery[:40])
            return PlainTextResponse("body is not JSON", status_code=400)
        if not isinstance(payload, dict):
            return PlainTextResponse("body is not a JSON object", status_code=400)
        wrong = shapes.problem(event, payload)
        if wrong:
            log.warning("rejected delivery %s (%s): %s", delivery[:40], event[:40], wrong)
            return PlainTextResponse(f"malformed {event} payload: {wrong}", status_code=400)
        if writer is not None:
            status, answer = await asyncio.get_running_loop().run_in_executor(writer, accept, event, delivery, payload,
                                                                              digest)
        else:
            status, answer = await run_in_threadpool(accept, event, delivery, payload, digest)
        return JSONResponse(answer, status_code=status)

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/webhook", webhook, methods=["POST"]), Route("/healthz", healthz)])
