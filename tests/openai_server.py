"""A small loopback OpenAI-compatible server with scripted faults, for the HTTP teacher's tests.

Real sockets and real HTTP (stdlib ``ThreadingHTTPServer``), so the client, its retries, timeouts and
concurrency cap are exercised for real; only the "model" is fake: it echoes the request so tests can
check what was sent (seed, n, stop) and counts requests in flight to check the cap.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # not 5: dozens of clients connect at once; none may be reset by the backlog


class FakeOpenAIServer:
    """``with FakeOpenAIServer() as srv: srv.base_url``; push faults onto ``srv.faults`` (one per request).

    A fault is a dict: ``{"status": 429, "headers": {...}, "body": "error text"}``, ``{"raw": b"..."}``
    (body sent as is with status 200), ``{"json": obj}`` (any JSON with status 200) or ``{"sleep": s}``
    (delay, then answer) or ``{"trickle": s}`` (the answer, one byte every ``s`` seconds: a slowloris).
    ``always`` applies a fault to every request once ``faults`` is empty.
    ``n_mode``: ``"ok"`` honours n, ``"ignore"`` answers one choice, ``"reject"`` answers 400 to n > 1.
    ``format_mode``: ``"ignore"`` answers as if ``response_format`` were not there (as ``transformers serve``
    does), ``"reject"`` answers 400 naming it. ``replies``: message contents to answer with, in order, instead
    of the echo (one per choice).
    """

    def __init__(
        self, *, delay_s: float = 0.0, n_mode: str = "ok", models: tuple[str, ...] = ("fake-model",),
        format_mode: str = "ignore",
    ) -> None:
        self.delay_s, self.n_mode, self.models, self.format_mode = delay_s, n_mode, models, format_mode
        self.replies: deque[str] = deque()
        self.faults: deque[dict[str, Any]] = deque()
        self.always: dict[str, Any] | None = None
        self.bodies: list[dict[str, Any]] = []
        self.auth_headers: list[str | None] = []
        self.in_flight = self.max_in_flight = 0
        self.answer_as: str | None = None  # answer naming this model (a replica switched models mid-run)
        self.models_payload: bytes | None = None  # GET /models answers these bytes instead
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def chat_requests(self) -> int:
        return len(self.bodies)

    def next_fault(self) -> dict[str, Any] | None:
        with self._lock:
            return self.faults.popleft() if self.faults else self.always

    def _reply(self, i: int, body: dict[str, Any], last_user: str) -> str:
        with self._lock:
            if self.replies:
                return self.replies.popleft()
        return _reply_default(i, body, last_user)

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        n = body.get("n", 1)
        if self.n_mode == "reject" and n > 1:
            return 400, {"error": {"message": "n > 1 is not supported", "type": "invalid_request_error"}}
        if self.format_mode == "reject" and "response_format" in body:
            refused = "Unsupported parameter: 'response_format'"
            return 400, {"error": {"message": refused, "type": "invalid_request_error"}}
        count = 1 if self.n_mode == "ignore" else n
        last_user = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": self._reply(i, body, last_user)},
                "finish_reason": "stop",
            }
            for i in range(count)
        ]
        model = self.answer_as or body.get("model")
        return 200, {"id": "chatcmpl-fake", "object": "chat.completion", "model": model, "choices": choices}


def _reply_default(i: int, body: dict[str, Any], last_user: str) -> str:
    return f"echo[{i}] seed={body.get('seed')} {last_user}"


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None,
                  trickle: float = 0.0) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if not trickle:
                    self.wfile.write(payload)
                for i in range(len(payload) if trickle else 0):  # bounded: one byte at a time, then done
                    self.wfile.write(payload[i:i + 1])
                    self.wfile.flush()
                    time.sleep(trickle)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models" and server.models_payload is not None:
                self._send(200, server.models_payload)
            elif self.path.rstrip("/") == "/v1/models":
                data = [{"id": m, "object": "model", "owned_by": "test"} for m in server.models]
                self._send(200, json.dumps({"object": "list", "data": data}).encode())
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with server._lock:
                server.bodies.append(body)
                server.auth_headers.append(self.headers.get("Authorization"))
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                fault = server.next_fault() or {}
                time.sleep(server.delay_s + fault.get("sleep", 0.0))
                headers = fault.get("headers")
                if "status" in fault:
                    status = fault["status"]
                    message = fault.get("body", f"injected {status}")
                    payload = json.dumps({"error": {"message": message}}).encode()
                elif "raw" in fault:
                    status, payload = 200, fault["raw"]
                elif "json" in fault:
                    status, payload = 200, json.dumps(fault["json"]).encode()
                else:
                    status, answer = server.answer(body)
                    payload = json.dumps(answer).encode()
            finally:
                # Leave "in flight" before replying: once the client has the reply it may reuse its
                # slot at once, and counting that overlap would report a cap breach that is not one.
                with server._lock:
                    server.in_flight -= 1
            self._send(status, payload, headers, fault.get("trickle", 0.0))

    return Handler
