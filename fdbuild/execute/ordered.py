"""Work done concurrently, results taken back in the order it was given.

A ``generate`` node asks many requests at once, yet writes its rows in input order (so its
artifact, and its digest, do not depend on which reply came first). ``OrderedWork`` hands
items to ``workers`` concurrent workers and gives every result, in submission order, to
``consume``. At most ``window`` results are waiting or in flight: a slow first request
holds back the producer, never memory. Items already known (a cache hit) take their place
in the order with ``ready``. The first exception anywhere ends the whole run
(``run_together``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from fdbuild.execute.workers import run_together

T = TypeVar("T")
R = TypeVar("R")

_END: Any = object()


class OrderedWork(Generic[T, R]):
    def __init__(self, work: Callable[[T], Awaitable[R]], *, workers: int, window: int) -> None:
        assert workers >= 1 and window >= 1
        self.work = work
        self.workers = workers
        self.window = window

    async def run(
        self,
        produce: Callable[
            [Callable[[T], Awaitable[None]], Callable[[R], Awaitable[None]]], Awaitable[None]
        ],
        consume: Callable[[R], Awaitable[None]],
        idle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``produce(submit, ready)`` awaits ``submit(item)`` for work and ``ready(result)``
        for a result already known; ``consume(result)`` sees them all, in that order.
        ``idle()`` is awaited whenever the next result is not in yet (the moment to pass
        on what was consumed so far)."""
        loop = asyncio.get_running_loop()
        slots: asyncio.Queue[asyncio.Future[R]] = asyncio.Queue(maxsize=self.window)
        todo: asyncio.Queue[tuple[T, asyncio.Future[R]] | Any] = asyncio.Queue(
            maxsize=self.workers * 2
        )

        async def submit(item: T) -> None:
            future: asyncio.Future[R] = loop.create_future()
            await slots.put(future)
            await todo.put((item, future))

        async def ready(result: R) -> None:
            future: asyncio.Future[R] = loop.create_future()
            future.set_result(result)
            await slots.put(future)

        async def producer() -> None:
            await produce(submit, ready)
            await slots.put(_END)
            for _ in range(self.workers):
                await todo.put(_END)

        async def worker() -> None:
            while (entry := await todo.get()) is not _END:
                item, future = entry
                future.set_result(await self.work(item))

        async def emitter() -> None:
            while True:
                if slots.empty() and idle is not None:
                    await idle()
                future = await slots.get()
                if future is _END:
                    return
                if not future.done() and idle is not None:
                    await idle()
                await consume(await future)

        await run_together(producer(), *(worker() for _ in range(self.workers)), emitter())
