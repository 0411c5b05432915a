"""A timeout for awaits that never loses a cancellation (Python 3.10 and 3.11).

``asyncio.wait_for`` before Python 3.12 swallows a cancellation that arrives while the
task it awaits has just finished: it returns the result instead of raising
``CancelledError`` (CPython gh-86296, fixed in 3.12 by rewriting it on
``asyncio.timeout``). A task cancelled at that moment runs on as if nothing happened.

fdbuild hit it at the end of a build: the identity watch, cancelled while the reply of
its periodic re-check was being delivered, kept re-checking every 10 s, and the build
waited for it forever, asleep and holding the build mutex. A teacher call cancelled
the same way (Ctrl-C, SIGTERM, a failed sibling) would return its reply and let the
worker take the next row. ``within`` is the timeout every fdbuild await uses instead:
the caller's cancellation always propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["within"]

T = TypeVar("T")


async def within(aw: Awaitable[T], timeout: float | None) -> T:
    """``await aw``, raising ``asyncio.TimeoutError`` after ``timeout`` seconds.

    As ``asyncio.wait_for``: on a timeout the awaited task is cancelled and waited for
    (it is not left running). Unlike it (before 3.12): if the caller is cancelled, the
    task is cancelled and ``CancelledError`` is raised, even if the task had already
    finished; its result is dropped."""
    task = asyncio.ensure_future(aw)
    try:
        # asyncio.wait never raises the task's outcome, only the caller's cancellation
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException:
        await _stop(task)
        raise
    if not done:
        await _stop(task)
        if task.cancelled():
            raise asyncio.TimeoutError(f"no result within {timeout:g} s")
    return task.result()  # an exception of the task is raised here


async def _stop(task: asyncio.Future[T]) -> None:
    """Cancel ``task`` and wait until it has ended (a second cancellation of the caller
    still propagates); its outcome is retrieved, so no 'never retrieved' warning."""
    task.cancel()
    try:
        await asyncio.wait({task})
    finally:
        if task.done() and not task.cancelled():
            task.exception()
