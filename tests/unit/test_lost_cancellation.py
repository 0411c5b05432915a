"""A cancellation that lands as an awaited reply is delivered is never lost.

``asyncio.wait_for`` before Python 3.12 returned the reply instead of raising: the
identity watch, cancelled at the end of a build while its re-check's reply came in,
went on checking every 10 s and the build waited for it forever, holding the build
mutex. Each test makes the cancel land exactly in that window (scheduled from inside
the awaited call, so it runs right after the call returns, before its waiter wakes):
no timing involved. Without the fix the cancelled task runs on, and the test fails on
its bounded wait instead of hanging.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fdbuild.aio import within
from fdbuild.execute.identity import IdentityWatch
from fdbuild.execute.teachers import TeacherPool
from fdbuild.providers import Provider, TeacherIdentity, TeacherRequest, TeacherResponse
from fdbuild.spec.model import LlamaCppTeacher
from fdbuild.store.rowcache import RowCache

pytestmark = pytest.mark.timeout(60)

DIGEST = "sha256:" + "a" * 64


def cancel_after_return(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` right after the current callback returns (before any waiter of
    the current task's result is woken)."""
    assert task is not None
    asyncio.get_running_loop().call_soon(task.cancel)


class CancelsOnReply(Provider):
    """A teacher whose reply arrives in the same loop turn as a cancel of ``victim``."""

    name = "llamacpp"

    def __init__(self) -> None:
        self.victim: asyncio.Task[Any] | None = None
        self.answered = 0

    def _answer(self) -> None:
        self.answered += 1
        if self.victim is not None:
            cancel_after_return(self.victim)
            self.victim = None  # once: a later cancel (the test's clean-up) must land

    async def resolve(self) -> TeacherIdentity:
        raise AssertionError("the watch re-checks an in-process teacher with identify()")

    async def identify(self) -> TeacherIdentity:
        self._answer()
        return TeacherIdentity(provider="llamacpp", model="m", digest=DIGEST)

    async def generate(self, request: TeacherRequest) -> TeacherResponse:
        self._answer()
        return TeacherResponse(text="a reply")


def pool_with(provider: Provider) -> tuple[TeacherPool, Any]:
    pool = TeacherPool(offline=False, recorded={})
    spec = LlamaCppTeacher(provider="llamacpp", model_path="m.gguf", retries=0)
    target = SimpleNamespace(spec=SimpleNamespace(teachers={"main": spec}))
    teacher = pool._get(target, "main")  # type: ignore[arg-type]
    teacher.provider = provider
    teacher.identity = TeacherIdentity(provider="llamacpp", model="m", digest=DIGEST)
    return pool, target


async def ended(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` ended (bounded wait); a task still running is cancelled for good."""
    done, _ = await asyncio.wait({task}, timeout=5)
    for _ in range(100):  # clean up; a lost cancellation may be lost again
        if task.done():
            break
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    return bool(done)


def test_the_identity_watch_stops_when_cancelled_as_a_recheck_answers(tmp_path: Path) -> None:
    provider = CancelsOnReply()
    pool, target = pool_with(provider)
    cache = RowCache(tmp_path / "cache")
    watch = IdentityWatch(pool, cache, interval_s=0.001, enabled=True)
    watch.track(target, "main")
    stopped: list[BaseException] = []

    async def scenario() -> asyncio.Task[None]:
        task = asyncio.create_task(watch.loop(stopped.append))
        provider.victim = task
        assert await ended(task), (
            f"the watch was cancelled but went on re-checking ({provider.answered} checks)"
        )
        return task

    task = asyncio.run(scenario())
    assert task.cancelled() and stopped == []
    assert provider.answered == 1
    cache.close()


def test_a_teacher_call_cancelled_as_its_reply_arrives_raises_cancelled() -> None:
    provider = CancelsOnReply()
    pool, target = pool_with(provider)
    request = TeacherRequest(messages=({"role": "user", "content": "hi"},), options={})
    outcome: list[str] = []

    async def worker() -> None:
        await pool.call(target, "main", request)
        outcome.append("returned the reply")  # the cancellation was lost
        await asyncio.Event().wait()  # as a worker waiting on an empty queue

    async def scenario() -> asyncio.Task[None]:
        task = asyncio.create_task(worker())
        provider.victim = task
        assert await ended(task), "the cancelled call returned its reply and the worker ran on"
        return task

    task = asyncio.run(scenario())
    assert task.cancelled() and outcome == [] and provider.answered == 1


def test_a_closed_watch_ends_at_its_next_turn_without_a_cancellation(tmp_path: Path) -> None:
    """A cancellation lost elsewhere (a plugin teacher's own wait_for) cannot keep the
    watch alive: the build closes it before cancelling it."""
    provider = CancelsOnReply()
    pool, target = pool_with(provider)
    cache = RowCache(tmp_path / "cache")
    watch = IdentityWatch(pool, cache, interval_s=0.001, enabled=True)
    watch.track(target, "main")

    async def scenario() -> None:
        task = asyncio.create_task(watch.loop(lambda exc: None))
        while provider.answered < 2:
            await asyncio.sleep(0.001)
        watch.close()
        assert await ended(task), "a closed watch went on re-checking"
        assert not task.cancelled()

    asyncio.run(scenario())
    cache.close()


def test_within_times_out_cancels_and_passes_results_and_errors_through() -> None:
    async def slow() -> str:
        await asyncio.sleep(3600)
        return "never"

    async def fails() -> None:
        raise ValueError("boom")

    async def quick() -> str:
        await asyncio.sleep(0)
        return "ok"

    async def scenario() -> None:
        inner = asyncio.ensure_future(slow())
        with pytest.raises(asyncio.TimeoutError):
            await within(inner, 0.01)
        assert inner.cancelled()  # not left running
        with pytest.raises(ValueError, match="boom"):
            await within(fails(), 5)
        assert await within(quick(), 5) == "ok"
        assert await within(quick(), None) == "ok"

    asyncio.run(scenario())
