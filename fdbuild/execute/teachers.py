"""Teachers during a build: one provider per teacher spec and host, its identity
resolved once, a concurrency bound per host, and retries with exponential backoff and
jitter.

Retries live here, not in providers (STYLE H7). Where a request goes is the host pool's
business (``execute/hosts.py``): every teacher is a pool of hosts, one for a ``host:``,
``base_url:``, in-process or plugin teacher, several for ``hosts:``. Each host bounds its
requests in flight by its concurrency; no batch barriers, so one slow request never
holds back the others.

**Identity.** Resolved once per teacher, when a node first needs it: every host is asked
(in parallel; ``execute/host_identity.py``). Hosts reporting different digests (or one without the model) stop the
build before any generation (``HostsDisagree``, naming each host and its digest). A host
that cannot be reached is benched and probed later, and the build goes on with the
others; only when none answers is the teacher unavailable (``ProviderUnavailable``).

**Failures.** In a pool of several hosts, a request that fails for its host's sake
(connection error, timeout, HTTP 5xx) benches the host and goes at once to another
healthy host, without using one of the row's ``retries``; when no other host is up, it
counts as a retry (with its backoff) and then waits for a host to come back. A teacher of
one host is never benched: every retryable failure is retried after its jittered
backoff, as before pools. A 4xx other than 429/499 fails the row at once.

Every reply passes ``call``, so two guards live here too:

* **Text.** A reply whose text, thinking or logprob tokens are not valid Unicode (a lone
  surrogate sent as ``"\\ud800"``) is a failed row, reason ``invalid_text``: it is never
  cached and not retried within the build (the same request gives the same reply).
* **Circuit breaker.** When every host of a teacher is down: ``breaker_threshold``
  consecutive connection failures or timeouts (requests and failed probes, with no reply
  in between; a failed probe while every host is benched counts once per request
  waiting for a host) while every host is benched. The teacher is then taken as down for the
  rest of the build: one message, no new request, and every remaining row of it fails at
  once with reason ``teacher_unavailable`` (retried on the next build).

A teacher whose identity changed during the build (``mark_changed``, from the identity
watch) refuses every further call with that ``TeacherChanged`` error.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fdbuild.aio import within
from fdbuild.errors import (
    ModelNotFound,
    OfflineMiss,
    ProviderError,
    ProviderUnavailable,
    TeacherCallError,
    TeacherChanged,
)
from fdbuild.execute.host_identity import resolve_hosts
from fdbuild.execute.hosts import Host, HostPool, host_url, lookup
from fdbuild.execute.text_check import INVALID_TEXT, check_record, describe_invalid
from fdbuild.keys import canonical_json
from fdbuild.providers import (
    Provider,
    TeacherIdentity,
    TeacherRequest,
    TeacherResponse,
    make_provider,
)
from fdbuild.providers.openai_servers import request_parts
from fdbuild.spec.load import LoadedTarget

# Consecutive connection failures or timeouts (no reply in between) that take a teacher
# as down for the rest of the build: 8, or twice the teacher's capacity (the sum of its
# hosts' concurrency) if that is more, so that one burst of in-flight requests cut
# together (a server restarting) and their first retries do not open it.
BREAKER_THRESHOLD = 8


def breaker_threshold(spec: Any) -> int:
    return max(BREAKER_THRESHOLD, 2 * spec_capacity(spec))


OUTAGE_REASONS = frozenset({"connection", "timeout"})
UNAVAILABLE = "teacher_unavailable"

# The digest a dry run keys an unreachable, never-recorded teacher with: no row has it.
UNREACHABLE_DIGEST = "unknown:teacher-unreachable"

RECHECK_UNREACHABLE = "unreachable"
"""What ``recheck_hosts`` reports for a host that could not be asked."""


def host_specs(spec: Any) -> list[tuple[Any, int]] | None:
    """A ``hosts:`` teacher as one single-host spec per host, with its concurrency;
    None for a teacher of one server."""
    hosts = getattr(spec, "hosts", None)
    if not hosts:
        return None
    key = "host" if spec.provider == "ollama" else "base_url"
    out = []
    for item in hosts:
        url, concurrency = (item, None) if isinstance(item, str) else (item.url, item.concurrency)
        out.append((spec.model_copy(update={key: url, "hosts": None}), concurrency))
    return [(one, concurrency or spec.concurrency) for one, concurrency in out]


def spec_capacity(spec: Any) -> int:
    """Requests a teacher may have in flight: the sum of its hosts' concurrency."""
    hosts = host_specs(spec)
    if hosts is None:
        return int(getattr(spec, "concurrency", 1) or 1)
    return sum(concurrency for _, concurrency in hosts)


@dataclass
class _Teacher:
    spec: Any
    target: LoadedTarget
    provider: Provider | None = None
    """The provider of a one-server teacher (built on first use)."""
    identity: TeacherIdentity | None = None
    resolving: asyncio.Lock | None = None
    name: str = ""
    outages_in_row: int = 0
    down: str | None = None
    """Set when the circuit breaker opened: why (the last connection error)."""
    changed: TeacherChanged | None = None
    pool: HostPool | None = None

    def label(self) -> str:
        hosts = getattr(self.spec, "hosts", None)
        where = getattr(self.spec, "host", None) or getattr(self.spec, "base_url", None)
        if hosts:
            where = f"{len(hosts)} hosts"
        model = self.spec.model or getattr(self.spec, "model_path", None)
        return f"'{self.name}' ({self.spec.provider} {model}" + (f" at {where})" if where else ")")


class TeacherPool:
    """All teachers of a build, shared by every node that names them."""

    def __init__(
        self,
        *,
        offline: bool,
        recorded: dict[str, dict[str, Any]],
        dry_run: bool = False,
        note: Callable[[str], None] | None = None,
        retry_base_s: float = 0.5,
        retry_cap_s: float = 20.0,
        teacher_workers: int = 0,
    ) -> None:
        self.offline = offline
        self.dry_run = dry_run
        self.recorded = recorded  # spec canonical -> identity dict from the lock
        self.notes: list[str] = []  # what a dry run substituted for an unreachable teacher
        self._note = note
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        self._teachers: dict[str, _Teacher] = {}
        self._ids: dict[int, str] = {}  # id(spec) -> spec_id; specs are frozen and live all build
        self.calls = 0
        self._callers: Any = None
        if teacher_workers:  # imported only then: a build without workers never pays for it
            from fdbuild.execute.callers import CallerProcesses

            self._callers = CallerProcesses(teacher_workers)
        """``--teacher-workers``: HTTP calls made in worker processes (callers.py)."""

    @staticmethod
    def spec_id(spec: Any) -> str:
        """Teachers with the same provider/model/hosts share a provider (and its bound)."""
        return canonical_json(spec.model_dump(exclude={"retries", "timeout_s"}))

    @staticmethod
    def offline_key(spec: Any) -> str:
        """What names the weights regardless of where they are served (host is not in it)."""
        fields = ("provider", "model", "model_path", "revision")
        return canonical_json({f: getattr(spec, f, None) for f in fields})

    def _get(self, target: LoadedTarget, name: str) -> _Teacher:
        spec = target.spec.teachers[name]
        sid = self._ids.get(id(spec))
        if sid is None:  # canonical JSON of a spec costs ~60 us: once per spec, not per request
            sid = self._ids[id(spec)] = self.spec_id(spec)
        teacher = self._teachers.get(sid)
        if teacher is None:
            teacher = _Teacher(spec=spec, target=target, resolving=asyncio.Lock(), name=name)
            self._teachers[sid] = teacher
        return teacher

    def teacher_id(self, target: LoadedTarget, name: str) -> str:
        """The pool's id of a target's teacher (teachers with one spec share it)."""
        spec = target.spec.teachers[name]
        sid = self._ids.get(id(spec))
        if sid is None:
            self._get(target, name)
            sid = self._ids[id(spec)]
        return sid

    def spec(self, target: LoadedTarget, name: str) -> Any:
        return target.spec.teachers[name]

    def capacity(self, target: LoadedTarget, teacher_name: str) -> int:
        """Requests the teacher may have in flight at once: the sum of its hosts'
        concurrency (a one-server or in-process teacher: its concurrency). Sizes the
        workers of a node that asks it."""
        return spec_capacity(target.spec.teachers[teacher_name])

    def host_report(self) -> dict[str, list[dict[str, Any]]]:
        """Per teacher used in this build (by name), one entry per host: url,
        concurrency, requests, failures, times benched, latency p50/p95 (seconds)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for teacher in self._teachers.values():
            if teacher.pool is None:
                continue
            name = teacher.name
            if name in out:  # another spec under the same name (in another target)
                name = f"{getattr(teacher.target, 'name', '?')}#{name}"
            out[name] = teacher.pool.report()
        return out

    # the hosts --------------------------------------------------------------------
    def _hosts(self, teacher: _Teacher) -> HostPool:
        """The teacher's host pool, built on first use."""
        if teacher.pool is None:
            specs = host_specs(teacher.spec)
            if specs is None:
                provider = self._provider(teacher)
                remote = self._remote(provider, teacher.spec, teacher.target)
                hosts = [Host(host_url(provider), teacher.spec.concurrency, remote)]
            else:
                base = teacher.target.base_dir
                providers = [(make_provider(one, base), c, one) for one, c in specs]
                hosts = [
                    Host(host_url(p), c, self._remote(p, one, teacher.target))
                    for p, c, one in providers
                ]
            teacher.pool = HostPool(
                hosts,
                name=teacher.name,
                base_s=self.retry_base_s,
                cap_s=self.retry_cap_s,
                note=self._note,
                on_probe_failed=lambda host, exc: self._probe_failed(teacher, host, exc),
            )
            if teacher.identity is not None:
                teacher.pool.digest = teacher.identity.digest
        return teacher.pool

    def _remote(self, provider: Provider, spec: Any, target: LoadedTarget) -> Provider:
        """With ``--teacher-workers``, an HTTP teacher's generations are made in worker
        processes (identity lookups stay here); in-process teachers are never moved."""
        if self._callers is None or spec.provider not in ("ollama", "openai"):
            return provider
        from fdbuild.execute.callers import RemoteProvider

        return RemoteProvider(provider, self._callers, spec, target.base_dir)

    def _provider(self, teacher: _Teacher) -> Provider:
        """Built on first use; a relative ``model_path`` is the target file's folder's."""
        if teacher.provider is None:
            spec = teacher.spec
            if getattr(spec, "model_path", None):
                resolved = str(teacher.target.resolve_path(spec.model_path))
                spec = spec.model_copy(update={"model_path": resolved})
            teacher.provider = make_provider(spec, teacher.target.base_dir)
        return teacher.provider

    # identity ---------------------------------------------------------------------
    async def identity(self, target: LoadedTarget, name: str) -> TeacherIdentity:
        teacher = self._get(target, name)
        assert teacher.resolving is not None
        async with teacher.resolving:
            if teacher.identity is None:
                teacher.identity = await self._resolve(target, name, teacher)
                if teacher.pool is not None:
                    teacher.pool.digest = teacher.identity.digest
        return teacher.identity

    async def _resolve(self, target: LoadedTarget, name: str, teacher: _Teacher) -> TeacherIdentity:
        in_process = teacher.spec.provider == "llamacpp"
        if (self.offline or self.dry_run) and in_process:
            # No server: the file's digest is the identity, hashed here (no model load).
            return await self._provider(teacher).identify()  # type: ignore[attr-defined]
        if self.offline:
            rec = self._recorded(teacher)
            if rec is None:
                raise OfflineMiss(
                    f"--offline: teacher '{name}' of {target.path.name} "
                    f"({teacher.spec.model}) has no digest recorded in fdbuild.lock; "
                    "build once with the teacher up"
                )
            return rec
        if self.dry_run:
            try:
                return await self._resolve_hosts(teacher)
            except ProviderUnavailable as exc:
                return self._unreachable(name, teacher, exc)
        return await self._resolve_hosts(teacher)

    async def _resolve_hosts(self, teacher: _Teacher) -> TeacherIdentity:
        """Ask every host; they must agree (``execute/host_identity.py``)."""
        return await resolve_hosts(
            self._hosts(teacher), teacher.label(), str(teacher.spec.model), self._note
        )

    def _recorded(self, teacher: _Teacher) -> TeacherIdentity | None:
        rec = self.recorded.get(self.offline_key(teacher.spec))
        if rec is None:
            return None
        fields: dict[str, Any] = {
            k: rec.get(k) for k in ("provider", "model", "digest", "server_version")
        }
        spec = teacher.spec
        request = request_parts(getattr(spec, "server", None), getattr(spec, "extra_body", {}))
        return TeacherIdentity(**fields, request=request)

    def _add_note(self, text: str) -> None:
        self.notes.append(text)
        if self._note is not None:
            self._note(text)

    def _unreachable(
        self, name: str, teacher: _Teacher, exc: ProviderUnavailable
    ) -> TeacherIdentity:
        """A dry run never needs the teacher: the lock's digest, else a placeholder that
        matches no cached row (every generation shows as to compute)."""
        rec = self._recorded(teacher)
        if rec is not None:
            self._add_note(
                f"teacher {name} unreachable: using the digest recorded in fdbuild.lock "
                f"({rec.digest}); {exc.message}"
            )
            return rec
        self._add_note(
            f"teacher {name} unreachable and no digest recorded in fdbuild.lock: "
            f"its generations show as to compute; {exc.message}"
        )
        return TeacherIdentity(
            provider=teacher.spec.provider,
            model=str(teacher.spec.model),
            digest=UNREACHABLE_DIGEST,
        )

    # requests ---------------------------------------------------------------------
    async def call(
        self,
        target: LoadedTarget,
        name: str,
        request: TeacherRequest,
        on_start: Callable[[], None] | None = None,
    ) -> tuple[TeacherResponse, int, float]:
        """Send with retries. Returns (response, attempts, seconds of the last attempt)."""
        teacher = self._get(target, name)
        pool = self._hosts(teacher)
        timeout = teacher.spec.timeout_s
        attempts = 0  # requests sent
        charged = 0  # of them, those that count against the row's retries
        failed_on: set[Host] = set()
        while True:
            self._refuse(teacher, attempts)
            host = await pool.acquire()
            if host is None:  # closed: the breaker opened or the teacher changed
                self._refuse(teacher, attempts, closed=True)
                continue  # not reached: _refuse raised
            try:
                attempts += 1
                if on_start is not None:
                    on_start()
                self.calls += 1
                t0 = time.perf_counter()
                try:
                    # within, not asyncio.wait_for: a cancel as the reply lands is not lost
                    response = await within(host.provider.generate(request), timeout)
                except asyncio.TimeoutError:
                    error = TeacherCallError(
                        f"no reply within {timeout}s", retryable=True, reason="timeout"
                    )
                except TeacherCallError as exc:
                    error = exc
                else:
                    seconds = time.perf_counter() - t0
                    pool.succeeded(host, seconds)
                    teacher.outages_in_row = 0
                    _check_text(response)
                    return response, attempts, seconds
                benched = pool.failed(host, error)  # before release: no request goes there
            finally:
                pool.release(host)
            self._count_outage(teacher, error)
            if benched and error.retryable:
                failed_on.add(host)
                if pool.healthy_other(frozenset(failed_on)):
                    continue  # another host serves it: not the row's failure
                failed_on.clear()
            charged += 1
            if not error.retryable or charged > teacher.spec.retries:
                error.attempts = attempts  # type: ignore[attr-defined]
                raise error
            # jittered, also when every host is benched: the requests waiting for a
            # probe must not all come back in one burst
            delay = min(self.retry_cap_s, self.retry_base_s * 2 ** (charged - 1))
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))

    def _refuse(self, teacher: _Teacher, attempts: int, closed: bool = False) -> None:
        """Raise at once for a teacher that changed or that the breaker took as down."""
        if teacher.changed is not None:
            raise teacher.changed
        if teacher.down is None and teacher.pool is not None and teacher.pool.down:
            teacher.down = teacher.pool.down
        if teacher.down is None and closed:
            teacher.down = "the build is closing its teachers"
        if teacher.down is not None:
            error = TeacherCallError(
                f"not sent: teacher {teacher.label()} is down ({teacher.down})",
                retryable=False,
                reason=UNAVAILABLE,
            )
            error.attempts = attempts  # type: ignore[attr-defined]
            raise error

    def _count_outage(self, teacher: _Teacher, error: TeacherCallError) -> None:
        """The circuit breaker: consecutive connection failures and timeouts open it."""
        if error.reason not in OUTAGE_REASONS:
            teacher.outages_in_row = 0  # the server answered: it is up
            return
        self._outage(teacher, error.message)

    def _probe_failed(self, teacher: _Teacher, host: Host, exc: BaseException) -> None:
        """A benched host still does not answer its probe: one more outage in a row, or,
        with every host benched, one per request waiting for a host (each of them would
        have failed, as each retry did when a request waited for nothing but its delay)."""
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        pool = teacher.pool
        waiting = pool.waiting if pool is not None and pool.all_benched() else 0
        self._outage(teacher, f"{host.url}: {message}", max(1, waiting))

    def _outage(self, teacher: _Teacher, message: str, count: int = 1) -> None:
        teacher.outages_in_row += count
        pool = teacher.pool
        # one host is never benched: its failures in a row are the whole story
        every_host_down = pool is None or len(pool.hosts) == 1 or pool.all_benched()
        if (
            teacher.down is None
            and every_host_down
            and teacher.outages_in_row >= breaker_threshold(teacher.spec)
        ):
            teacher.down = message
            if pool is not None:
                pool.close()
            if self._note is not None:
                hosts = "" if pool is None or len(pool.hosts) == 1 else " on every host"
                self._note(
                    f"teacher {teacher.label()}: {teacher.outages_in_row} requests in a row "
                    f"failed to connect or timed out{hosts} (last: {message}); sending it "
                    f"nothing more in this build: its remaining rows fail as {UNAVAILABLE} "
                    "and are retried on the next build"
                )

    # identity re-checks (used by the identity watch) ----------------------------------
    def current(self, sid: str) -> TeacherIdentity:
        identity = self._teachers[sid].identity
        assert identity is not None, "only teachers with a resolved identity are re-checked"
        return identity

    def label(self, sid: str) -> str:
        return self._teachers[sid].label()

    def host_count(self, sid: str) -> int:
        return len(self._hosts(self._teachers[sid]).hosts)

    def is_down(self, sid: str) -> bool:
        teacher = self._teachers[sid]
        return teacher.down is not None or teacher.changed is not None

    async def recheck_hosts(self, sid: str) -> list[tuple[str, str | None]]:
        """Ask every host again which weights it serves: (url, digest), the digest None
        when the model is gone from it, ``RECHECK_UNREACHABLE`` when it could not be
        asked (a benched host whose last probe failed is not asked again).

        An in-process teacher (llamacpp) memoises ``resolve()``; its ``identify()`` is the
        file's digest, memoised by size and mtime, so an unchanged file costs one stat.
        A host excluded for other weights (it never served) is not asked."""
        teacher = self._teachers[sid]
        pool = self._hosts(teacher)
        timeout = min(30.0, float(teacher.spec.timeout_s or 30.0))

        async def one(host: Host) -> tuple[str, str | None]:
            if host.benched and host.unreachable:
                return host.url, RECHECK_UNREACHABLE
            try:
                fresh = await within(lookup(host.provider), timeout)  # never loses a cancel
            except ModelNotFound:
                return host.url, None
            except (ProviderError, asyncio.TimeoutError):
                return host.url, RECHECK_UNREACHABLE
            return host.url, fresh.digest

        hosts = [h for h in pool.hosts if h.excluded is None]
        if len(hosts) == 1:
            return [await one(hosts[0])]
        return list(await asyncio.gather(*(one(h) for h in hosts)))

    def mark_changed(self, sid: str, error: TeacherChanged) -> None:
        teacher = self._teachers[sid]
        teacher.changed = error
        if teacher.pool is not None:
            teacher.pool.close()

    def is_changed(self, sid: str) -> bool:
        teacher = self._teachers.get(sid)
        return teacher is not None and teacher.changed is not None

    async def aclose(self) -> None:
        for teacher in self._teachers.values():
            if teacher.pool is not None:
                await teacher.pool.aclose()
            elif teacher.provider is not None:
                await teacher.provider.aclose()
        if self._callers is not None:
            await self._callers.aclose()


def _check_text(response: TeacherResponse) -> None:
    """A reply that is not valid Unicode is a failed row, never cached (module doc)."""
    record = response.to_record()
    where = check_record(record)
    if where is not None:
        raise TeacherCallError(
            describe_invalid(record, where), retryable=False, reason=INVALID_TEXT
        )
