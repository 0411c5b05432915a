"""A producer feeding a bounded queue drained by N workers, where nothing dies silently.

The first exception anywhere (in the producer or in any worker) cancels every other task
and is raised to the caller; so is a cancellation of the caller (Ctrl-C, SIGTERM, a
teacher whose identity changed). A worker that died on a failed cache write can no
longer leave the producer blocked on a full queue forever: the build ends with the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

Put = Callable[[T], Awaitable[None]]


class _Done:
    """The end-of-work marker, one per worker."""


_DONE = _Done()


class WorkerPool(Generic[T]):
    """``await WorkerPool(work, workers=4).run(produce)``.

    ``produce(put)`` awaits ``put(item)`` for every item (backpressure: the queue holds at
    most ``queue_size``); ``work(item)`` handles one item. Handled failures (a failed row)
    are the worker's business; anything it raises ends the whole pool.
    """

    def __init__(
        self, work: Callable[[T], Awaitable[None]], *, workers: int, queue_size: int
    ) -> None:
        assert workers >= 1
        self.work = work
        self.workers = workers
        self.queue: asyncio.Queue[T | _Done] = asyncio.Queue(maxsize=max(1, queue_size))

    async def _worker(self) -> None:
        while not isinstance(item := await self.queue.get(), _Done):
            await self.work(item)

    async def _producer(self, produce: Callable[[Put[T]], Awaitable[None]]) -> None:
        await produce(self.queue.put)
        for _ in range(self.workers):
            await self.queue.put(_DONE)

    async def run(self, produce: Callable[[Put[T]], Awaitable[None]]) -> None:
        await run_together(self._producer(produce), *(self._worker() for _ in range(self.workers)))


async def run_together(*coros: Awaitable[None]) -> None:
    """Run ``coros`` as tasks until all end. The first exception (in the order given: a
    producer's before its workers') cancels the others and is raised; so is a
    cancellation of the caller. No task outlives the call."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task in done and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        # Wait for the cancelled tasks, so none outlives the node (or the loop).
        await asyncio.gather(*tasks, return_exceptions=True)
