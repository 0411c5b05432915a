"""A teacher's servers: which one gets the next request, which are benched, and what
each one did.

A teacher with ``hosts:`` is served by several servers of the same model; a teacher with
one ``host``/``base_url`` (or an in-process or plugin teacher) is a pool of one, so every
teacher goes through the same code. The pool owns no retries and no breaker (both are
the teacher's, ``execute/teachers.py``); it decides where a request goes:

* **Selection.** The next request goes to the healthy host with the fewest outstanding
  requests relative to its concurrency (``outstanding / concurrency``, lowest first;
  ties to the host listed first). A host never has more than its ``concurrency`` in
  flight, so the teacher's capacity is the sum of its hosts'. Requests that find every
  healthy host full wait in arrival order.
* **Benching** (a pool of several hosts; one host is never benched, its requests
  retry with their own backoff as they always did). A request that fails for the host's sake (``HOST_FAULTS``: a connection
  error, a timeout, an HTTP 5xx) benches its host before its slot is released, so no
  other request is sent there meanwhile. A benched host is probed (``probe``: the
  identity lookup, ``/api/tags`` for Ollama, ``/models`` for an OpenAI-compatible
  server, the file's digest for an in-process model) after a backoff of
  ``base_s * 2**(strikes-1)`` seconds (jittered, at most ``cap_s``), ``strikes`` being
  its failures in a row (requests and probes; a reply resets them). A probe that answers
  with the teacher's digest puts the host back to work; one that fails benches it
  again, longer.
* **Digests.** A probe that finds another digest than the teacher's keeps the host off
  work for the rest of the build: a host that never served is *excluded* (with a note:
  nothing it served can be wrong); a host that served is left to the identity watch
  (``execute/identity.py``), which treats it as a teacher whose weights changed.
* **Counts.** Per host: requests sent, failures, times benched, latency p50/p95 of the
  requests it answered (``report``).
"""

from __future__ import annotations

import asyncio
import random
import statistics
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fdbuild.aio import within
from fdbuild.errors import ModelNotFound, TeacherCallError
from fdbuild.providers import Provider, TeacherIdentity

__all__ = ["HOST_FAULTS", "Host", "HostPool", "host_fault", "host_url"]

PROBE_MIN_S = 0.005
"""The shortest wait before a probe."""

PROBE_TIMEOUT_S = 30.0
"""Bound of one probe (an identity lookup is small; a server that does not answer it in
this time is taken as still down)."""


def host_fault(error: TeacherCallError) -> bool:
    """Whether a failed request says more about the host than about the request."""
    if error.reason in ("connection", "timeout"):
        return True
    status = error.reason.removeprefix("http_")
    return error.reason.startswith("http_") and status.isdigit() and int(status) >= 500


HOST_FAULTS = "connection errors, timeouts and HTTP 5xx"


def host_url(provider: Provider) -> str:
    """Where a provider sends its requests (its normalized host or base URL)."""
    where = getattr(provider, "host", None) or getattr(provider, "base_url", None)
    return str(where) if where else "in-process"


@dataclass(eq=False)
class Host:
    """One server of a teacher, and its counters."""

    url: str
    concurrency: int
    provider: Provider
    outstanding: int = 0
    requests: int = 0
    failures: int = 0
    benched_count: int = 0
    strikes: int = 0
    """Failures in a row (requests and probes); a reply resets them."""
    benched: bool = False
    unreachable: bool = False
    """Its last probe could not reach it (a re-check would not either)."""
    served: bool = False
    """It answered a request of this build (its digest then matters to the watch)."""
    reported: str | None = None
    """The digest its last probe reported, when not the teacher's (None: the same)."""
    excluded: str | None = None
    """Why it gets no work for the rest of the build (set once, never cleared)."""
    latencies: list[float] = field(default_factory=list)
    probe_task: asyncio.Task[None] | None = None

    def load(self) -> float:
        return self.outstanding / self.concurrency

    def report(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else None
        return {
            "url": self.url,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "failures": self.failures,
            "benched": self.benched_count,
            "p50_s": round(statistics.median(lat), 4) if lat else None,
            "p95_s": round(p95, 4) if p95 is not None else None,
            **({"excluded": self.excluded} if self.excluded else {}),
        }


Probe = Callable[[Host], Awaitable[TeacherIdentity]]


class HostPool:
    """The hosts of one teacher: selection, benching and probing (module doc)."""

    def __init__(
        self,
        hosts: list[Host],
        *,
        name: str,
        base_s: float,
        cap_s: float,
        note: Callable[[str], None] | None = None,
        on_probe_failed: Callable[[Host, BaseException], None] | None = None,
        probe: Probe | None = None,
    ) -> None:
        assert hosts, "a teacher has at least one host"
        self.hosts = hosts
        self.name = name
        self.base_s = base_s
        self.cap_s = cap_s
        self.digest: str | None = None
        """The teacher's digest, once resolved: a probe reporting another is not trusted."""
        self._note = note
        self._on_probe_failed = on_probe_failed
        self._probe = probe or default_probe
        self._waiters: deque[asyncio.Future[Host | None]] = deque()
        self.closed = False
        self.down: str | None = None
        """Set when the pool itself found no host can serve (all excluded)."""

    @property
    def waiting(self) -> int:
        """Requests waiting for a host."""
        return sum(1 for w in self._waiters if not w.done())

    @property
    def capacity(self) -> int:
        return sum(h.concurrency for h in self.hosts)

    def all_benched(self) -> bool:
        """No host can take work now (each is benched or excluded)."""
        return all(h.benched or h.excluded for h in self.hosts)

    def alive(self) -> bool:
        """Some host may take work again (one is not excluded)."""
        return any(h.excluded is None for h in self.hosts)

    # selection --------------------------------------------------------------------
    def _pick(self, avoid: frozenset[Host] = frozenset()) -> Host | None:
        best: Host | None = None
        for host in self.hosts:
            if host.benched or host.excluded or host.outstanding >= host.concurrency:
                continue
            if host in avoid:
                continue
            if best is None or host.load() < best.load():
                best = host
        return best

    def healthy_other(self, avoid: frozenset[Host]) -> bool:
        """Whether a host outside ``avoid`` is up (free or busy): a failover target."""
        return any(not (h.benched or h.excluded) and h not in avoid for h in self.hosts)

    async def acquire(self) -> Host | None:
        """A host with a free slot (counted as outstanding), waiting for one; None once
        the pool is closed (the teacher is down or changed)."""
        if self.closed:
            return None
        if not self._waiters:
            host = self._pick()
            if host is not None:
                host.outstanding += 1
                return host
        waiter: asyncio.Future[Host | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                self.release(waiter.result())  # type: ignore[arg-type]
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _wake(self) -> None:
        """Hand free slots to waiters, oldest first."""
        while self._waiters:
            if self.closed:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                continue
            host = self._pick()
            if host is None:
                return
            waiter = self._waiters.popleft()
            if waiter.done():  # cancelled meanwhile
                continue
            host.outstanding += 1
            waiter.set_result(host)

    def release(self, host: Host) -> None:
        host.outstanding -= 1
        self._wake()

    # outcomes ---------------------------------------------------------------------
    def succeeded(self, host: Host, seconds: float) -> None:
        host.requests += 1
        host.strikes = 0
        host.served = True
        host.latencies.append(seconds)

    def failed(self, host: Host, error: TeacherCallError) -> bool:
        """Count a failed request; bench its host for a host fault. Call before
        ``release``. Returns whether the host was benched.

        A pool of one host never benches: there is nowhere else to send the request,
        and its requests' own jittered backoff spaces the retries out better than one
        probe releasing every waiting request at once (a server failing every Nth
        request would fail the same request each time)."""
        host.requests += 1
        host.failures += 1
        if not host_fault(error) or len(self.hosts) == 1:
            return False
        if not host.benched:
            self._bench(host, error.message)
        return True

    def _bench(self, host: Host, why: str, *, quiet: bool = False) -> None:
        host.strikes += 1
        host.benched = True
        host.benched_count += 1
        if len(self.hosts) > 1 and self._note is not None and host.benched_count == 1 and not quiet:
            self._note(
                f"teacher '{self.name}': host {host.url} failed ({why}); benched, its "
                "requests go to the other hosts until it answers a probe"
            )
        self._schedule_probe(host)

    def _delay(self, host: Host) -> float:
        """The wait before the next probe; never 0, so a dead host is not probed in a
        busy loop (the tests run with no backoff)."""
        exponent = max(0, host.strikes - 1)
        delay = min(self.cap_s, self.base_s * 2 ** min(exponent, 30)) * random.uniform(0.5, 1.5)
        return max(PROBE_MIN_S, delay)

    def _schedule_probe(self, host: Host) -> None:
        if self.closed or host.excluded:
            return
        if host.probe_task is None or host.probe_task.done():
            host.probe_task = asyncio.get_running_loop().create_task(self._probe_later(host))

    async def _probe_later(self, host: Host) -> None:
        while not self.closed and host.benched and not host.excluded:
            await asyncio.sleep(self._delay(host))
            if self.closed:
                return
            try:
                identity = await self._probe(host)
            except asyncio.CancelledError:
                raise
            except ModelNotFound as exc:
                self._reported(host, None, exc.message)
                continue
            except Exception as exc:  # noqa: BLE001 - any probe failure keeps it benched
                host.strikes += 1
                host.unreachable = True
                if self._on_probe_failed is not None:
                    self._on_probe_failed(host, exc)
                continue
            host.unreachable = False
            if self.digest is not None and identity.digest != self.digest:
                self._reported(host, identity.digest, f"digest {identity.digest}")
                continue
            host.reported = None
            host.benched = False
            self._wake()
            return

    def _reported(self, host: Host, digest: str | None, what: str) -> None:
        """A probe found other weights (or none) on ``host``: it gets no more work."""
        host.unreachable = False
        host.reported = digest if digest is not None else "(model not on the host)"
        if host.served:
            return  # the identity watch discards what it served and ends the build
        host.excluded = f"reports {what}, not the teacher's {self.digest}"
        if not self.alive():
            self.close(f"every host reports other weights than the teacher's {self.digest}")
        if self._note is not None:
            self._note(
                f"teacher '{self.name}': host {host.url} came back with other weights "
                f"({what}; the teacher's digest is {self.digest}): it gets no work in "
                "this build"
            )

    def bench_at_start(self, host: Host, why: str) -> None:
        """A host that did not answer the identity lookup: probed until it does (the
        teacher says so once for all such hosts)."""
        host.unreachable = True
        self._bench(host, why, quiet=True)

    def close(self, why: str | None = None) -> None:
        """No more work: waiters get None, probes stop. ``why``: the pool is down."""
        if why is not None and self.down is None:
            self.down = why
        self.closed = True
        self._wake()
        for host in self.hosts:
            if host.probe_task is not None and not host.probe_task.done():
                host.probe_task.cancel()

    async def aclose(self) -> None:
        self.close()
        tasks = [h.probe_task for h in self.hosts if h.probe_task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        for host in self.hosts:
            await host.provider.aclose()

    def report(self) -> list[dict[str, Any]]:
        return [h.report() for h in self.hosts]


async def default_probe(host: Host) -> TeacherIdentity:
    """The cheap request that tells whether a host is back: its identity lookup."""
    return await within(lookup(host.provider), PROBE_TIMEOUT_S)


def lookup(provider: Provider) -> Awaitable[TeacherIdentity]:
    """``identify()`` where a provider has it (an in-process model: the file's digest,
    no reload), else ``resolve()``."""
    identify = getattr(provider, "identify", None)
    return identify() if callable(identify) else provider.resolve()
