"""Micro-batching shared by the in-process backends (transformers, vLLM).

Local models are far more efficient on one padded batch than on many single prompts, but SDG code
naturally issues one ``await teacher.complete(...)`` per sample. The batcher bridges the two: requests
submitted concurrently are gathered (up to ``max_batch``, waiting at most ``max_wait_s`` for
stragglers) and handed to a blocking ``run_batch`` in a worker thread, one batch at a time so the
model is never entered concurrently and the event loop stays responsive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from .base import TeacherError

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """Gathers concurrently submitted items into batches for a blocking ``run_batch``."""

    def __init__(
        self, run_batch: Callable[[list[T]], Sequence[R]], max_batch: int = 8, max_wait_s: float = 0.01
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.batches_run = 0  # observable by tests and metrics: batches < requests means batching works
        self.items_run = 0
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for its result (exceptions of ``run_batch`` propagate)."""
        if self._closed:
            raise TeacherError("teacher is closed")
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._worker is None or self._worker.done():
            # First use, or a new event loop (e.g. a second asyncio.run): queues are loop-bound.
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._work(self._queue), name="teacher-microbatcher")
        fut: asyncio.Future[R] = loop.create_future()
        assert self._queue is not None
        self._queue.put_nowait((item, fut))
        return await fut

    async def _gather(self, queue: asyncio.Queue[tuple[T, asyncio.Future[R]]]) -> list[tuple[T, asyncio.Future[R]]]:
        batch = [await queue.get()]
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                batch.append(queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        return [(item, fut) for item, fut in batch if not fut.done()]  # drop cancelled submitters

    async def _work(self, queue: asyncio.Queue[tuple[T, asyncio.Future[R]]]) -> None:
        while True:
            batch = await self._gather(queue)
            if not batch:
                continue
            items = [item for item, _ in batch]
            try:
                results = await asyncio.to_thread(self._run_batch, items)
                if len(results) != len(items):
                    raise TeacherError(f"backend returned {len(results)} results for {len(items)} requests")
            except asyncio.CancelledError:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(TeacherError("teacher closed while the request was running"))
                raise
            except Exception as exc:  # delivered to every waiter of this batch
                err = exc if isinstance(exc, TeacherError) else TeacherError(f"{type(exc).__name__}: {exc}")
                err.__cause__ = exc if err is not exc else exc.__cause__
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(err)
                continue
            self.batches_run += 1
            self.items_run += len(items)
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    async def aclose(self) -> None:
        """Stop the worker; requests still queued fail with :class:`TeacherError`."""
        self._closed = True
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            if worker.get_loop() is asyncio.get_running_loop():
                worker.cancel()
                try:
                    await worker
                except asyncio.CancelledError:
                    pass
        if self._queue is not None:
            while not self._queue.empty():
                _, fut = self._queue.get_nowait()
                if not fut.done():
                    fut.set_exception(TeacherError("teacher is closed"))


class BatchedTeacher:
    """The Teacher methods every in-process backend shares: requests go through a ``MicroBatcher``
    into the subclass's blocking ``_run_batch``; tokens are counted with the model's own tokenizer."""

    _batcher: MicroBatcher
    _tokenizer: Any

    def _start_batcher(self, batch_size: int, max_wait_s: float) -> None:
        self._batcher = MicroBatcher(self._run_batch, batch_size, max_wait_s)

    def _run_batch(self, requests: list) -> list[list[str]]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def batches_run(self) -> int:
        """Micro-batches executed so far (fewer than requests when batching works)."""
        return self._batcher.batches_run

    async def complete(self, request: Any) -> list[str]:
        return await self._batcher.submit(request)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    async def aclose(self) -> None:
        await self._batcher.aclose()
