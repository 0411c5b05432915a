"""Teacher calls made in worker processes (``--teacher-workers``): the same replies as in
the driver, over the real ``ollama`` client and HTTP, and a worker that dies fails its
calls as retryable connection errors, then is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from fdbuild.errors import TeacherCallError
from fdbuild.execute.callers import CallerProcesses, RemoteProvider
from fdbuild.providers import make_provider
from fdbuild.providers.base import TeacherRequest
from fdbuild.spec.model import OllamaTeacher
from tests.support.fixtures import OLLAMA_MODEL


def request(seed: int) -> TeacherRequest:
    messages = ({"role": "user", "content": f"Question {seed}"},)
    return TeacherRequest(messages=messages, options={"temperature": 0, "seed": seed})


def test_replies_from_workers_are_the_drivers(ollama_server) -> None:
    spec = OllamaTeacher(model=OLLAMA_MODEL, host=ollama_server.url)

    async def go() -> None:
        local = make_provider(spec, Path("."))
        callers = CallerProcesses(2)
        remote = RemoteProvider(make_provider(spec, Path(".")), callers, spec, Path("."))
        try:
            here = [await local.generate(request(i)) for i in range(6)]
            there = await asyncio.gather(*(remote.generate(request(i)) for i in range(6)))
            assert [r.text for r in there] == [r.text for r in here]
            assert [r.done_reason for r in there] == [r.done_reason for r in here]
            assert (await remote.resolve()).digest == (await local.resolve()).digest
            assert len({w.process.pid for w in callers._workers}) == 2
        finally:
            await callers.aclose()
            await local.aclose()
            await remote.aclose()

    asyncio.run(go())
    assert ollama_server.generation_count == 12


def test_a_dead_worker_fails_its_calls_as_connection_errors(ollama_server) -> None:
    spec = OllamaTeacher(model=OLLAMA_MODEL, host=ollama_server.url)
    ollama_server.latency_s = 2.0

    async def go() -> None:
        callers = CallerProcesses(1)
        remote = RemoteProvider(make_provider(spec, Path(".")), callers, spec, Path("."))
        try:
            call = asyncio.ensure_future(remote.generate(request(1)))
            while ollama_server.generation_count == 0:
                await asyncio.sleep(0.01)
            os.kill(callers._workers[0].process.pid, signal.SIGKILL)
            with pytest.raises(TeacherCallError) as err:
                await call
            assert err.value.retryable and err.value.reason == "connection"
            ollama_server.latency_s = 0.0
            again = await remote.generate(request(2))  # a new worker takes its place
            assert again.text
        finally:
            await callers.aclose()
            await remote.aclose()

    asyncio.run(go())
