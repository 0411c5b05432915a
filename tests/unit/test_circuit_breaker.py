"""The teacher pool's guards on every reply: the circuit breaker, invalid Unicode, and a
teacher whose identity changed; and the worker pool that lets no exception go unseen."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from fdbuild.errors import TeacherCallError, TeacherChanged
from fdbuild.execute.teachers import BREAKER_THRESHOLD, UNAVAILABLE, TeacherPool
from fdbuild.execute.text_check import check_record
from fdbuild.execute.workers import WorkerPool
from fdbuild.providers import Provider, TeacherIdentity, TeacherRequest, TeacherResponse
from fdbuild.spec.model import OllamaTeacher

REQUEST = TeacherRequest(messages=({"role": "user", "content": "q"},), options={"seed": 1})


class ScriptedProvider(Provider):
    """Answers each generate() with the next scripted outcome (an exception or a reply)."""

    name = "scripted"

    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def resolve(self) -> TeacherIdentity:
        return TeacherIdentity(provider="ollama", model="m:latest", digest="a" * 64)

    async def generate(self, request: TeacherRequest) -> TeacherResponse:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else TeacherResponse(text="ok")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def connection_error() -> TeacherCallError:
    return TeacherCallError(
        "lost the connection (ConnectError)", retryable=True, reason="connection"
    )


def pool_with(outcomes: list[Any], *, retries: int = 0, concurrency: int = 1):
    notes: list[str] = []
    pool = TeacherPool(offline=False, recorded={}, note=notes.append, retry_base_s=0.0)
    spec = OllamaTeacher(
        model="m", host="http://127.0.0.1:9", retries=retries, concurrency=concurrency
    )
    target = SimpleNamespace(spec=SimpleNamespace(teachers={"main": spec}))
    provider = ScriptedProvider(outcomes)
    pool._get(target, "main").provider = provider  # type: ignore[arg-type]
    return pool, target, provider, notes


async def call(pool: TeacherPool, target: Any) -> tuple[str | None, int]:
    """(failure reason or None, attempts)."""
    try:
        _, attempts, _ = await pool.call(target, "main", REQUEST)
    except TeacherCallError as exc:
        return exc.reason, exc.attempts  # type: ignore[attr-defined]
    return None, attempts


def test_consecutive_connection_failures_open_the_breaker_once() -> None:
    async def scenario() -> None:
        pool, target, provider, notes = pool_with([connection_error()] * 50)
        reasons = [await call(pool, target) for _ in range(BREAKER_THRESHOLD)]
        assert reasons == [("connection", 1)] * BREAKER_THRESHOLD
        assert provider.calls == BREAKER_THRESHOLD
        # open: nothing more is sent, every further row fails at once
        for _ in range(20):
            assert await call(pool, target) == (UNAVAILABLE, 0)
        assert provider.calls == BREAKER_THRESHOLD
        assert len(notes) == 1 and "8 requests in a row" in notes[0]
        assert "'main'" in notes[0] and UNAVAILABLE in notes[0]

    asyncio.run(scenario())


def test_retries_count_towards_the_breaker_and_stop_when_it_opens() -> None:
    async def scenario() -> None:
        pool, target, provider, _ = pool_with([connection_error()] * 50, retries=20)
        assert await call(pool, target) == (UNAVAILABLE, BREAKER_THRESHOLD)
        assert provider.calls == BREAKER_THRESHOLD

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "between",
    [
        TeacherResponse(text="a reply"),
        TeacherCallError("HTTP 500: runner crashed", retryable=True, reason="http_500"),
    ],
    ids=["reply", "http-error"],
)
def test_any_answer_from_the_server_resets_the_count(between: Any) -> None:
    async def scenario() -> None:
        almost = [connection_error()] * (BREAKER_THRESHOLD - 1)
        pool, target, provider, notes = pool_with([*almost, between, *almost])
        for _ in range(2 * BREAKER_THRESHOLD - 1):
            await call(pool, target)
        assert provider.calls == 2 * BREAKER_THRESHOLD - 1
        assert notes == []
        assert await call(pool, target) == (None, 1)  # still asked

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "reply",
    [
        TeacherResponse(text="SELECT \ud800 FROM t"),
        TeacherResponse(text="fine", thinking="hmm \udfff"),
        TeacherResponse(
            text="fine", logprobs=[{"token": "a", "logprob": -0.1}, {"token": "\ud83d"}]
        ),
    ],
    ids=["text", "thinking", "logprobs"],
)
def test_a_reply_that_is_not_valid_unicode_is_a_failed_row_not_retried(reply: Any) -> None:
    async def scenario() -> None:
        pool, target, provider, _ = pool_with([reply], retries=4)
        try:
            await pool.call(target, "main", REQUEST)
        except TeacherCallError as exc:
            assert exc.reason == "invalid_text" and not exc.retryable
            assert "not valid Unicode" in exc.message
            exc.message.encode("utf-8")  # the detail itself is printable
        else:
            raise AssertionError("an invalid reply was returned")
        assert provider.calls == 1

    asyncio.run(scenario())


def test_valid_non_ascii_text_passes() -> None:
    assert check_record({"text": "naïve 😀 文字", "logprobs": [{"token": "😀"}]}) is None
    assert check_record({"text": "ok", "extra": {"\ud800": 1}}) == "extra.<key>"


def test_a_changed_teacher_refuses_every_call() -> None:
    async def scenario() -> None:
        pool, target, provider, _ = pool_with([])
        sid = pool.teacher_id(target, "main")
        pool.mark_changed(sid, TeacherChanged("teacher 'main' changed"))
        with pytest.raises(TeacherChanged):
            await pool.call(target, "main", REQUEST)
        assert provider.calls == 0

    asyncio.run(scenario())


def test_a_worker_exception_ends_the_pool_and_the_producer() -> None:
    """A worker that dies must not leave the producer blocked on a full queue."""

    async def scenario() -> tuple[int, list[int]]:
        handled: list[int] = []
        produced = 0

        async def work(item: int) -> None:
            if item == 3:
                raise OSError(28, "No space left on device")
            handled.append(item)

        async def produce(put: Any) -> None:
            nonlocal produced
            for i in range(10_000):
                produced += 1
                await put(i)

        pool = WorkerPool(work, workers=2, queue_size=4)
        with pytest.raises(OSError, match="No space"):
            await asyncio.wait_for(pool.run(produce), timeout=10)
        return produced, handled

    produced, handled = asyncio.run(scenario())
    assert produced < 100 and 3 not in handled


def test_a_producer_exception_cancels_the_workers() -> None:
    async def scenario() -> None:
        started = asyncio.Event()

        async def work(item: int) -> None:
            started.set()
            await asyncio.sleep(3600)

        async def produce(put: Any) -> None:
            await put(1)
            await started.wait()
            raise ValueError("bad input row")

        with pytest.raises(ValueError, match="bad input row"):
            await asyncio.wait_for(WorkerPool(work, workers=2, queue_size=2).run(produce), 10)

    asyncio.run(scenario())


def test_a_wide_teacher_tolerates_one_cut_burst() -> None:
    """With concurrency 16, a server restart cuts 16 requests at once: not yet an outage."""

    async def scenario() -> None:
        pool, target, provider, notes = pool_with([connection_error()] * 100, concurrency=16)
        for _ in range(31):
            assert (await call(pool, target))[0] == "connection"
        assert notes == []
        assert await call(pool, target) == ("connection", 1)  # the 32nd opens it
        assert await call(pool, target) == (UNAVAILABLE, 0)
        assert "32 requests in a row" in notes[0]

    asyncio.run(scenario())
