"""Teacher behind an OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, TGI, llama.cpp, ...).

Built for long SDG runs against shared servers: one cap on requests in flight per teacher, bounded
retries with exponential backoff and jitter on 429/5xx/timeouts/connection errors (``Retry-After``
honoured), and defensive parsing, because a misbehaving server must surface as :class:`TeacherError`,
never as a ``KeyError`` deep inside the generator.

Above ``CONNECTIONS_PER_CLIENT`` requests in flight, requests are spread over several ``httpx.AsyncClient``
pools under that same single cap: one client slows down sharply as its pool grows (measured: 640 requests
with 64 keep-alive connections in one client took 10.9 s where the server's ideal was 2.0 s; 4 clients x 16
connections took 2.3 s).
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import os
import random
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .base import EndpointFailed, Request, TeacherError, TeacherUnavailable, cut_at_stop, sample_seed

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
KEY_REFUSED = frozenset({401, 403})  # the endpoint refuses our key: no retry mends that during a run
ENDPOINT_STATUS = frozenset({404, 405})  # the URL serves no chat completions: the endpoint's fault, not the request's
WORDS_TO_TOKENS = 1.3  # rough tokens-per-word of BPE tokenizers on English, used without a tokenizer
CONNECTIONS_PER_CLIENT = 16  # connections one httpx.AsyncClient serves well; more go to another client


class _Retryable(Exception):
    def __init__(self, cause: str, retry_after: float | None = None) -> None:
        super().__init__(cause)
        self.retry_after = retry_after


class _Rejected(Exception):
    """A non-retryable 4xx; kept apart so an ``n > 1`` rejection can fall back to single requests."""

    def __init__(self, status: int, cause: str) -> None:
        super().__init__(cause)
        self.status = status


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _normalise_base_url(url: str) -> tuple[str, str | None]:
    """Split ``http://host:port[/prefix][#model]``; a bare host gets the conventional ``/v1``."""
    if any(c.isspace() for c in url):
        raise ValueError(f"a teacher URL has no spaces: {url!r}; several endpoints are a list (a TOML array, or "
                         "--teacher given once per endpoint)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if parts.username or parts.password:
        raise ValueError("put credentials in an environment variable (api_key_env), not in the URL")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), parts.fragment or None


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


class OpenAIHTTPTeacher:
    """Chat completions over HTTP with ``httpx.AsyncClient``: one, or one per ``CONNECTIONS_PER_CLIENT``
    requests of ``max_concurrency``; each request goes to the client with the fewest in flight."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key_env: str | None = None,
        max_concurrency: int = 8,
        timeout_s: float = 120.0,
        max_attempts: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        tokenizer_path: str | Path | None = None,
        check_model: bool = False,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("the HTTP teacher needs httpx: pip install 'labrador-lab[sdg]'") from exc
        self._httpx = httpx
        self.base_url, url_model = _normalise_base_url(base_url)
        if max_concurrency < 1 or max_attempts < 1:
            raise ValueError("max_concurrency and max_attempts must be >= 1")
        self.max_concurrency, self.max_attempts = max_concurrency, max_attempts
        if not 0 < timeout_s <= 86_400:
            raise ValueError("timeout_s must be more than 0 and at most a day")
        # timeout_s bounds a whole attempt (connect, send, every byte of the answer), not each read: an endpoint
        # that trickles a byte a second is as dead as one that never answers
        self.timeout_s, self.backoff_base_s, self.backoff_max_s = timeout_s, backoff_base_s, backoff_max_s
        self.check_model = check_model  # a reply naming another model is refused (a pool's replicas must agree)
        self._headers = {"Content-Type": "application/json"}
        self._secret: str | None = None
        if api_key_env is not None:
            key = os.environ.get(api_key_env)
            if not key:
                raise ValueError(f"environment variable {api_key_env} (API key) is not set or empty")
            self._headers["Authorization"] = f"Bearer {key}"
            self._secret = key
        self._tokenizer = _load_tokenizer(tokenizer_path) if tokenizer_path else None
        self.n_supported: bool | None = None  # learnt from the server's first n > 1 answer
        self.structured: bool | None = None  # False once the server refused response_format (for this run)
        self.in_flight = self.max_in_flight = 0  # observable; max_in_flight never exceeds max_concurrency
        self.client_requests: list[int] = []  # observable: requests sent through each client, and their peaks
        self.client_max_in_flight: list[int] = []
        self._clients: list[Any] = []
        self._outstanding: list[int] = []
        self._sem: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.model = model or url_model or self._discover_model()
        self.name = f"openai:{self.base_url}#{self.model}"
        # the cache's identity is the model, not the URL: moving to another replica, or to a pool of them, asks
        # nothing again (a pool's is the same)
        self.cache_id = model_identity(self.model)

    def __repr__(self) -> str:
        return f"OpenAIHTTPTeacher({self.name!r})"  # never the headers: they may hold the key

    # -- public API ----------------------------------------------------------------------------------

    async def complete(self, request: Request) -> list[str]:
        if request.n == 1 or self.n_supported is False:
            return await self._fan_out(request, 0)
        try:
            texts = await self._chat(request, request.n)
        except _Rejected as exc:
            if self.n_supported:
                raise self._error(str(exc)) from None
            first = await self._fan_out(request, 0, count=1)  # does the server take n=1?
            self.n_supported = False
            return first + await self._fan_out(request, 1)
        if len(texts) >= request.n:
            self.n_supported = True
            return texts[: request.n]
        self.n_supported = False  # server ignores n: remember, and fetch the missing samples singly
        return texts + await self._fan_out(request, len(texts))

    def count_tokens(self, text: str) -> int:
        """Exact with a local tokenizer (``tokenizer_path``), else ``ceil(words * 1.3)``."""
        if self._tokenizer is not None:
            return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
        return math.ceil(len(text.split()) * WORDS_TO_TOKENS)

    async def aclose(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            await client.aclose()

    def _error(self, message: str, kind: type[TeacherError] = TeacherError, **extra: Any) -> TeacherError:
        """Prefix the teacher's identity and scrub the API key, whatever a server echoed back."""
        text = f"{getattr(self, 'name', 'openai:' + self.base_url)}: {message}"
        return kind(text.replace(self._secret, "***") if self._secret else text, **extra)

    # -- requests ------------------------------------------------------------------------------------

    async def _fan_out(self, request: Request, start: int, count: int | None = None) -> list[str]:
        """Samples ``start..`` as single requests, each with its own derived seed."""
        stop = request.n if count is None else start + count

        async def one(k: int) -> str:
            texts = await self._chat(request, 1, seed=sample_seed(request.seed, k))
            return texts[0]

        tasks = [asyncio.ensure_future(one(k)) for k in range(start, stop)]
        try:
            return list(await asyncio.gather(*tasks))
        except _Rejected as exc:
            raise self._error(str(exc)) from None
        finally:
            for task in tasks:  # one sample failed for good: do not leave its siblings running
                task.cancel()

    async def _chat(self, request: Request, n: int, seed: int | None = None) -> list[str]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.as_openai_messages(),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
        }
        if n > 1:
            body["n"] = n
        seed = request.seed if n > 1 else seed
        if seed is not None:
            body["seed"] = seed
        if request.stop:
            body["stop"] = list(request.stop)
        if request.schema and self.structured is not False:
            body["response_format"] = request.response_format
        try:
            data = await self._post_with_retries("/chat/completions", body)
        except _Rejected as exc:
            if "response_format" not in body or exc.status != 400 or not _about_response_format(str(exc)):
                raise
            self.structured = False  # remembered for the run: every later request goes without it
            return await self._chat(request, n, seed)
        if "response_format" in body:
            self.structured = True
        answered_as = data.get("model") if isinstance(data, dict) else None
        if self.check_model and isinstance(answered_as, str) and answered_as != self.model:
            raise self._error(f"answered as model {_snippet(answered_as, 80)!r}, not {self.model!r}: the endpoint "
                              "switched models", EndpointFailed, for_run=True)
        try:
            texts = _parse_choices(data)
        except TeacherError as exc:
            raise self._error(str(exc), EndpointFailed) from None
        if not texts:
            raise self._error(f"response has no choices{_error_hint(data)}", EndpointFailed)
        return [cut_at_stop(t, request.stop) for t in texts]  # servers that ignore "stop"

    async def _post_with_retries(self, path: str, body: dict[str, Any]) -> Any:
        clients, sem = self._ensure_clients()
        outstanding, sent, peaks = self._outstanding, self.client_requests, self.client_max_in_flight
        last = "no attempt"
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with sem:  # the one cap, across all clients
                    i = min(range(len(clients)), key=outstanding.__getitem__)
                    outstanding[i] += 1
                    sent[i] += 1
                    peaks[i] = max(peaks[i], outstanding[i])
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                    try:
                        resp = await asyncio.wait_for(clients[i].post(self.base_url + path, json=body),
                                                      self.timeout_s)
                    finally:
                        self.in_flight -= 1
                        outstanding[i] -= 1
                return self._decode(resp)
            except _Retryable as exc:
                last, retry_after = str(exc), exc.retry_after
            except self._httpx.TransportError as exc:  # timeouts, refused/reset connections
                last, retry_after = f"{type(exc).__name__}: {_snippet(str(exc))}", None
            except TimeoutError:  # the whole attempt's deadline (a trickling or silent endpoint)
                last, retry_after = f"no whole answer within {self.timeout_s:g} s", None
            except self._httpx.RequestError as exc:  # e.g. undecodable body: not worth retrying
                raise self._error(f"{type(exc).__name__}: {_snippet(str(exc))}") from None
            if attempt < self.max_attempts:
                await asyncio.sleep(self._delay(attempt, retry_after))
        raise self._error(f"request failed after {self.max_attempts} attempts: {last}", TeacherUnavailable)

    def _decode(self, resp: Any) -> Any:
        if resp.status_code in RETRY_STATUS:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise _Retryable(f"HTTP {resp.status_code}: {_snippet(resp.text)}", retry_after)
        if resp.status_code in KEY_REFUSED:
            key = "the API key" if self._secret else "requests without an API key (set api_key_env)"
            raise self._error(f"HTTP {resp.status_code}: the endpoint refused {key}: {_snippet(resp.text)}",
                              EndpointFailed, for_run=True)
        if resp.status_code in ENDPOINT_STATUS:
            raise self._error(f"HTTP {resp.status_code}: {_snippet(resp.text)} (is the base URL right?)",
                              EndpointFailed)
        if resp.status_code >= 400:
            raise _Rejected(resp.status_code, f"HTTP {resp.status_code}: {_snippet(resp.text)}")
        try:
            return resp.json()
        except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python's stack
            raise self._error(f"malformed JSON in response: {_snippet(resp.text)}", EndpointFailed) from None

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with "equal jitter"; a server's Retry-After wins (capped)."""
        if retry_after is not None:
            return min(retry_after, max(self.backoff_max_s, 60.0))
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _ensure_clients(self) -> tuple[list[Any], asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if not self._clients or self._loop is not loop or self._sem is None:
            # httpx pools and semaphores are bound to one event loop: rebuild on a new loop.
            count = -(-self.max_concurrency // CONNECTIONS_PER_CLIENT)
            # Fewest-in-flight placement under the one semaphore never puts more than this on one client.
            limits = self._httpx.Limits(max_connections=-(-self.max_concurrency // count))
            timeout = self._httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s))
            self._clients = [self._httpx.AsyncClient(headers=self._headers, timeout=timeout, limits=limits)
                             for _ in range(count)]
            self._outstanding = [0] * count
            self.client_requests, self.client_max_in_flight = [0] * count, [0] * count
            self._sem, self._loop = asyncio.Semaphore(self.max_concurrency), loop
        return self._clients, self._sem

    def _discover_model(self) -> str:
        """First model of GET /models (blocking, once, at construction) so ``name`` is known up front."""
        last = "no attempt"
        with self._httpx.Client(headers=self._headers, timeout=min(30.0, self.timeout_s)) as client:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    data = self._decode(client.get(self.base_url + "/models"))
                    break
                except _Retryable as exc:
                    last, retry_after = str(exc), exc.retry_after
                except self._httpx.TransportError as exc:
                    last, retry_after = f"{type(exc).__name__}: {_snippet(str(exc))}", None
                except _Rejected as exc:
                    raise self._error(f"model discovery at /models failed: {exc}", TeacherUnavailable) from None
                if attempt < self.max_attempts:
                    time.sleep(self._delay(attempt, retry_after))
            else:
                raise self._error(f"model discovery at /models failed: {last}", TeacherUnavailable)
        models = data.get("data") if isinstance(data, dict) else None
        if not isinstance(models, list) or not models or not isinstance(models[0], dict):
            raise self._error("/models lists no model; pass model= (or URL#model)")
        model_id = models[0].get("id")
        if not isinstance(model_id, str) or not model_id:
            raise self._error("/models: first entry has no string 'id'")
        return model_id


def model_identity(model: str) -> str:
    """What a generation cache keys an OpenAI-compatible teacher by: its model, over any number of endpoints."""
    return f"openai-pool#{model}"


def _parse_choices(data: Any) -> list[str]:
    """Texts of ``choices[*].message.content`` in index order; anything unexpected is TeacherError."""
    if not isinstance(data, dict):
        raise TeacherError(f"response is not a JSON object but {type(data).__name__}")
    choices = data.get("choices")
    if choices is None:
        return []
    if not isinstance(choices, list):
        raise TeacherError("response 'choices' is not a list")
    texts: list[tuple[int, str]] = []
    for pos, choice in enumerate(choices):
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise TeacherError(f"choice {pos} has no string message.content")
        index = choice.get("index")
        texts.append((index if isinstance(index, int) and not isinstance(index, bool) else pos, content))
    if len({i for i, _ in texts}) == len(texts):
        texts.sort(key=lambda item: item[0])
    return [text for _, text in texts]


def _about_response_format(message: str) -> bool:
    """Does a 400 refuse the structured-output field (rather than, say, the prompt)?"""
    text = message.lower()
    return any(word in text for word in ("response_format", "json_schema", "response format", "structured"))


def _error_hint(data: Any) -> str:
    err = data.get("error") if isinstance(data, dict) else None
    return f": {_snippet(str(err))}" if err else ""


def _load_tokenizer(path: str | Path) -> Any:
    """A ``tokenizers`` tokenizer from a tokenizer.json or a model directory holding one."""
    from tokenizers import Tokenizer

    path = Path(path).expanduser()
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"no tokenizer.json at {path}")
    return Tokenizer.from_file(str(file))
