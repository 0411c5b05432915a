"""Teacher calls made in worker processes, for a fleet fast enough that one driver core is
the limit (``fdbuild build --teacher-workers N``).

The HTTP client's own work (building the request, parsing the streamed reply) is most of
the CPU a generation costs the driver. With ``N`` workers, each process runs its own
event loop with its own provider (and so its own client and connections); the driver
sends it the request and gets the reply back over a pipe (``multiprocessing``, pickled).
Everything else stays in the driver: keys, retries, host choice and benching, the
identity checks, the row cache, the artifacts. So a build's state on disk is the same
with or without workers; the option is never keyed.

A worker that dies fails its requests in flight as connection errors: the driver's
retries send them again (to a restarted worker).
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from fdbuild.errors import TeacherCallError
from fdbuild.providers import Provider, TeacherIdentity, TeacherRequest, TeacherResponse

_STOP = ("stop",)


def _worker_main(conn: Connection) -> None:
    """A worker process: serve ``("generate", id, (spec, base_dir), request)`` messages
    until ``stop`` or the driver goes away."""
    try:
        asyncio.run(_serve(conn))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the driver decides
        pass


async def _serve(conn: Connection) -> None:
    from fdbuild.providers import make_provider

    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    providers: dict[str, Provider] = {}
    tasks: set[asyncio.Task[None]] = set()

    def readable() -> None:
        try:
            while conn.poll():
                inbox.put_nowait(conn.recv())
        except (EOFError, OSError):
            inbox.put_nowait(_STOP)

    async def handle(call_id: int, where: tuple[str, Any, str], request: TeacherRequest) -> None:
        key, spec, base_dir = where
        provider = providers.get(key)
        if provider is None:
            provider = providers[key] = make_provider(spec, Path(base_dir))
        try:
            response = await provider.generate(request)
            reply: tuple[Any, ...] = ("ok", call_id, response)
        except TeacherCallError as exc:
            reply = ("error", call_id, exc.message, exc.retryable, exc.reason)
        except Exception as exc:  # noqa: BLE001 - a provider bug is that request's failure
            reply = ("error", call_id, f"{type(exc).__name__}: {exc}", False, "error")
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            pass  # the driver is gone

    loop.add_reader(conn.fileno(), readable)
    try:
        while (message := await inbox.get()) != _STOP:
            _, call_id, where, request = message
            task = asyncio.create_task(handle(call_id, where, request))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        loop.remove_reader(conn.fileno())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for provider in providers.values():
            await provider.aclose()


class _Worker:
    def __init__(self, context: Any) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.pending: dict[int, asyncio.Future[TeacherResponse]] = {}
        self.alive = True


class CallerProcesses:
    """``workers`` processes making teacher calls; a call goes to the one with the fewest
    requests outstanding."""

    def __init__(self, workers: int) -> None:
        assert workers >= 1
        # spawn, not fork: the driver runs an event loop and threads (diskcache, ray)
        self._context = multiprocessing.get_context("spawn")
        self._size = workers
        self._workers: list[_Worker] = []
        self._ids = itertools.count()

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        while len(self._workers) < self._size:
            worker = _Worker(self._context)
            loop.add_reader(worker.conn.fileno(), self._readable, worker)
            self._workers.append(worker)

    def _readable(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                self._settle(worker, worker.conn.recv())
        except (EOFError, OSError):
            self._lost(worker)

    def _settle(self, worker: _Worker, reply: tuple[Any, ...]) -> None:
        future = worker.pending.pop(reply[1], None)
        if future is None or future.done():
            return  # the caller was cancelled meanwhile
        if reply[0] == "ok":
            future.set_result(reply[2])
        else:
            _, _, message, retryable, reason = reply
            future.set_exception(TeacherCallError(message, retryable=retryable, reason=reason))

    def _lost(self, worker: _Worker) -> None:
        """A worker died: its requests fail as connection errors (retried), and a new
        worker takes its place on the next call."""
        if not worker.alive:
            return
        worker.alive = False
        asyncio.get_running_loop().remove_reader(worker.conn.fileno())
        worker.conn.close()
        self._workers.remove(worker)
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(
                    TeacherCallError(
                        "the worker process making this call died",
                        retryable=True,
                        reason="connection",
                    )
                )
        worker.pending.clear()

    async def generate(
        self, where: tuple[str, Any, str], request: TeacherRequest
    ) -> TeacherResponse:
        self._start()
        worker = min(self._workers, key=lambda w: len(w.pending))
        call_id = next(self._ids)
        future: asyncio.Future[TeacherResponse] = asyncio.get_running_loop().create_future()
        worker.pending[call_id] = future
        try:
            worker.conn.send(("generate", call_id, where, request))
        except (BrokenPipeError, OSError):
            self._lost(worker)
        try:
            return await future
        finally:
            worker.pending.pop(call_id, None)

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        workers, self._workers = self._workers, []
        for worker in workers:
            loop.remove_reader(worker.conn.fileno())
            try:
                worker.conn.send(_STOP)
            except (BrokenPipeError, OSError):
                pass
        for worker in workers:
            await asyncio.to_thread(worker.process.join, 5)
            if worker.process.is_alive():
                worker.process.kill()
            worker.conn.close()


class RemoteProvider(Provider):
    """A provider whose generations are made by a worker process (``CallerProcesses``);
    its identity is still looked up in the driver, by the provider it stands for."""

    name = "remote"

    def __init__(
        self, local: Provider, callers: CallerProcesses, spec: Any, base_dir: Path
    ) -> None:
        self.local = local
        self.callers = callers
        key = f"{id(local)}:{os.getpid()}"
        self.where = (key, spec, str(base_dir))

    async def resolve(self) -> TeacherIdentity:
        return await self.local.resolve()

    async def generate(self, request: TeacherRequest) -> TeacherResponse:
        return await self.callers.generate(self.where, request)

    async def aclose(self) -> None:
        await self.local.aclose()

    def __getattr__(self, name: str) -> Any:  # identify(), model_path, ...: the local one's
        return getattr(self.local, name)
