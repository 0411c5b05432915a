"""The local executor: CPU-bound checks in a process pool (``--jobs N``), the rest inline.

A check whose rows cost CPU (``cpu_bound``: ``sqlite_exec``, ``python_tests``, symbolic
``math_answer``) has its rows evaluated by ``jobs`` worker processes (default: the cores
this process may use), in batches (a few per worker, at most 128 rows each, so pickling
does not dominate), and the results are put back in input order. Everything else, and
every parse, runs inline in the driver: for a cheap check, sending the rows to another
process costs more than evaluating them. ``--jobs 1`` runs everything inline. Until
the workers are up (a second or so), a CPU-bound check's rows run inline too, so a small
build, or the first rows of a pipelined one, never wait for them.

A worker evaluates exactly what the driver would: the check is rebuilt there from its
class and params (``shipping.py``), each row is sent with the columns the check reads
(its ``reads()``, which is all its evaluation may depend on: they are its key), and a
row whose check raises comes back as ``("error", ...)`` as it would inline. A check
that cannot be rebuilt in a worker (a class defined in ``__main__``, params that do not
pickle) runs inline, and ``notes`` says so once. A worker that dies (killed, out of
memory) breaks the pool, and every batch in it: the pool is replaced, and each lost
batch runs again once, alone in a process of its own, so only a batch that kills that
one too is lost, as errors (failed rows, retried by the next build).

Workers are spawned (``spawn``), the driver's own children, never forked from it (its
event loop, threads and open SQLite handles would be copied) nor from a fork server
(which outlives a driver killed with -9, with its workers). They ignore SIGINT (Ctrl-C
is the driver's to handle) and end when the driver is gone.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from fdbuild.executors.base import Evaluated, Parsed, evaluate_all, parse_all
from fdbuild.executors.shipping import NotShippable, Shipment, Unavailable, run_checks, ship_check

if TYPE_CHECKING:
    from fdbuild.checks.base import Check
    from fdbuild.parsers.base import Parser

MAX_BATCH_ROWS = 128
MIN_BATCH_ROWS = 8
BATCHES_PER_WORKER = 4
SHUTDOWN_GRACE_S = 2.0


def default_jobs() -> int:
    """The cores this process may use (its CPU affinity where the OS tells), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def batch_size(rows: int, workers: int) -> int:
    """Rows per task: about ``BATCHES_PER_WORKER`` tasks per worker (so a slow batch does
    not leave the others idle), between ``MIN_BATCH_ROWS`` and ``MAX_BATCH_ROWS``."""
    size = math.ceil(rows / max(1, workers * BATCHES_PER_WORKER))
    return max(MIN_BATCH_ROWS, min(MAX_BATCH_ROWS, size))


def split(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def project(check: Check[Any], rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each row with only the columns the check reads (an absent column stays absent)."""
    reads = list(check.reads())
    return [{c: row[c] for c in reads if c in row} for row in rows]


def _hello() -> None:
    """A worker's first task: it answers once it is up."""


def _worker_init(driver: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(driver,), daemon=True).start()


def _exit_with(driver: int) -> None:
    """A worker ends when the driver is gone (kill -9 leaves it no time to say so): an
    orphaned worker would hold the build's terminal and pipes open for ever."""
    while os.getppid() == driver:
        time.sleep(0.5)
    os._exit(0)


class LocalExecutor:
    """Runs everything on this machine; CPU-bound checks over ``jobs`` processes."""

    name = "local"

    def __init__(
        self,
        jobs: int | None = None,
        *,
        batch_rows: int | None = None,
        inline_while_starting: bool = True,
    ) -> None:
        self.jobs = default_jobs() if jobs is None else max(1, jobs)
        self.batch_rows = batch_rows
        """Rows per task; None: ``batch_size()``."""
        self.inline_while_starting = inline_while_starting
        """Evaluate inline until the pool's workers are up (about a second): a short
        build, or the first rows of a pipelined one, do not wait for them."""
        self._warming: list[Future[None]] | None = None
        self._ready = False
        self.notes: list[str] = []
        """Why a check ran inline although it is CPU-bound (once per check)."""
        self._pool: ProcessPoolExecutor | None = None
        self._shipments: dict[int, tuple[Check[Any], Shipment | None]] = {}
        self._isolated = asyncio.Semaphore(self.jobs)
        """Bounds the lone processes that re-run the batches of a broken pool."""

    def uses_pool(self, check: Check[Any]) -> bool:
        return self.jobs > 1 and bool(getattr(check, "cpu_bound", False)) and check.scope == "row"

    async def evaluate(
        self, check: Check[Any], rows: Sequence[Mapping[str, Any]]
    ) -> list[Evaluated]:
        if not rows or not self.uses_pool(check):
            return evaluate_all(check, rows)
        shipment = self._shipment(check)
        if shipment is None:
            return evaluate_all(check, rows)
        out: list[Evaluated] = []
        while len(out) < len(rows) and not self._started():
            # the workers are still starting: a few rows here meanwhile, the rest to them
            # once they are up (a whole artifact's rows inline kept the pool idle)
            out += evaluate_all(check, rows[len(out) : len(out) + MIN_BATCH_ROWS])
            await asyncio.sleep(0)
        if len(out) == len(rows):
            return out
        return out + await self._in_pool(check, shipment, rows[len(out) :])

    async def _in_pool(
        self, check: Check[Any], shipment: Shipment, rows: Sequence[Mapping[str, Any]]
    ) -> list[Evaluated]:
        size = self.batch_rows or batch_size(len(rows), self.jobs)
        batches = split(project(check, rows), size)
        results = await asyncio.gather(*(self._run(shipment, batch) for batch in batches))
        out: list[Evaluated] = []
        for batch, result in zip(batches, results, strict=True):
            if isinstance(result, Unavailable):
                self._inline(check, f"a worker could not rebuild it: {result.reason}")
                out += evaluate_all(check, batch)
            else:
                out += result
        return out

    async def parse(self, parser: Parser, texts: Sequence[str]) -> list[Parsed]:
        return parse_all(parser, texts)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        self._shipments.clear()
        if pool is not None:
            await asyncio.to_thread(_shutdown, pool)

    def _shipment(self, check: Check[Any]) -> Shipment | None:
        """The check's shipment (built once), or None: it runs inline."""
        known = self._shipments.get(id(check))
        if known is not None and known[0] is check:
            return known[1]
        try:
            shipment: Shipment | None = ship_check(check, by_value=False)
        except NotShippable as exc:
            shipment = None
            self._note(check, str(exc))
        self._shipments[id(check)] = (check, shipment)
        return shipment

    def _inline(self, check: Check[Any], reason: str) -> None:
        self._shipments[id(check)] = (check, None)
        self._note(check, reason)

    def _note(self, check: Check[Any], reason: str) -> None:
        note = f"check '{check.name}' runs inline (not in --jobs worker processes): {reason}"
        if note not in self.notes:
            self.notes.append(note)

    async def _run(
        self, shipment: Shipment, batch: list[dict[str, Any]]
    ) -> list[Evaluated] | Unavailable:
        """One batch in the pool. A worker's death breaks the whole pool, and every batch
        in it with no telling which one killed it: each lost batch runs again once, alone
        in a process of its own, so only the batch that kills again is lost (as errors)."""
        pool = self._pool_now()
        try:
            return await asyncio.wrap_future(pool.submit(run_checks, shipment, batch))
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
        async with self._isolated:
            solo = self._new_pool(1)
            try:
                return await asyncio.wrap_future(solo.submit(run_checks, shipment, batch))
            except BrokenProcessPool as exc:
                message = f"BrokenProcessPool: a worker process died on this batch twice ({exc})"
                return [("error", message) for _ in batch]
            finally:
                await asyncio.to_thread(_shutdown, solo)

    def _started(self) -> bool:
        """Whether the pool's workers are up; the first call starts them (each worker
        answers a no-op). Always true without ``inline_while_starting``."""
        if self._ready or not self.inline_while_starting:
            return True
        if self._warming is None:
            pool = self._pool_now()
            self._warming = [pool.submit(_hello) for _ in range(self.jobs)]
        self._ready = all(f.done() for f in self._warming)
        return self._ready

    def _pool_now(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = self._new_pool(self.jobs)
        return self._pool

    @staticmethod
    def _new_pool(workers: int) -> ProcessPoolExecutor:
        # spawn: the workers are the driver's own children (a forkserver outlives a driver
        # killed with -9, and so do its children), and fork is unsafe beside the event
        # loop's and diskcache's threads
        ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )


def _shutdown(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started; give running batches ``SHUTDOWN_GRACE_S``, then end
    the workers (after Ctrl-C a batch of slow rows must not hold the driver's exit)."""
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        proc.join(SHUTDOWN_GRACE_S)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(SHUTDOWN_GRACE_S)
