"""Teachers during a build: one provider per teacher spec, its identity resolved once,
a concurrency bound, and retries with exponential backoff and jitter.

Retries live here, not in providers (STYLE H7). A semaphore bounds requests in flight
per teacher: no batch barriers, so one slow request never holds back the others.

Every reply passes ``call``, so two guards live here too:

* **Text.** A reply whose text, thinking or logprob tokens are not valid Unicode (a lone
  surrogate sent as ``"\\ud800"``) is a failed row, reason ``invalid_text``: it is never
  cached and not retried within the build (the same request gives the same reply).
* **Circuit breaker.** After ``breaker_threshold`` consecutive connection failures or
  timeouts of one teacher, with no reply in between, the teacher is taken as down for the
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
from fdbuild.errors import OfflineMiss, ProviderUnavailable, TeacherCallError, TeacherChanged
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
# as down for the rest of the build: 8, or twice the teacher's concurrency if that is
# more, so that one burst of in-flight requests cut together (a server restarting) and
# their first retries do not open it.
BREAKER_THRESHOLD = 8


def breaker_threshold(spec: Any) -> int:
    return max(BREAKER_THRESHOLD, 2 * int(getattr(spec, "concurrency", 1) or 1))


OUTAGE_REASONS = frozenset({"connection", "timeout"})
UNAVAILABLE = "teacher_unavailable"

# The digest a dry run keys an unreachable, never-recorded teacher with: no row has it.
UNREACHABLE_DIGEST = "unknown:teacher-unreachable"


@dataclass
class _Teacher:
    spec: Any
    provider: Provider | None = None
    identity: TeacherIdentity | None = None
    semaphore: asyncio.Semaphore | None = None
    resolving: asyncio.Lock | None = None
    name: str = ""
    outages_in_row: int = 0
    down: str | None = None
    """Set when the circuit breaker opened: why (the last connection error)."""
    changed: TeacherChanged | None = None

    def label(self) -> str:
        where = getattr(self.spec, "host", None) or getattr(self.spec, "base_url", None)
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

    @staticmethod
    def spec_id(spec: Any) -> str:
        """Teachers with the same provider/model/host share a provider (and its bound)."""
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
            teacher = _Teacher(
                spec=spec,
                semaphore=asyncio.Semaphore(spec.concurrency),
                resolving=asyncio.Lock(),
                name=name,
            )
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

    async def identity(self, target: LoadedTarget, name: str) -> TeacherIdentity:
        teacher = self._get(target, name)
        assert teacher.resolving is not None
        async with teacher.resolving:
            if teacher.identity is None:
                teacher.identity = await self._resolve(target, name, teacher)
        return teacher.identity

    async def _resolve(self, target: LoadedTarget, name: str, teacher: _Teacher) -> TeacherIdentity:
        in_process = teacher.spec.provider == "llamacpp"
        if (self.offline or self.dry_run) and in_process:
            # No server: the file's digest is the identity, hashed here (no model load).
            return await self._provider(target, teacher).identify()  # type: ignore[attr-defined]
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
                return await self._provider(target, teacher).resolve()
            except ProviderUnavailable as exc:
                return self._unreachable(name, teacher, exc)
        return await self._provider(target, teacher).resolve()

    def _provider(self, target: LoadedTarget, teacher: _Teacher) -> Provider:
        """Built on first use; a relative ``model_path`` is the target file's folder's."""
        if teacher.provider is None:
            spec = teacher.spec
            if getattr(spec, "model_path", None):
                resolved = str(target.resolve_path(spec.model_path))
                spec = spec.model_copy(update={"model_path": resolved})
            teacher.provider = make_provider(spec, target.base_dir)
        return teacher.provider

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

    async def call(
        self,
        target: LoadedTarget,
        name: str,
        request: TeacherRequest,
        on_start: Callable[[], None] | None = None,
    ) -> tuple[TeacherResponse, int, float]:
        """Send with retries. Returns (response, attempts, seconds of the last attempt)."""
        teacher = self._get(target, name)
        assert teacher.provider is not None and teacher.semaphore is not None
        attempts = 0
        retries = teacher.spec.retries
        while True:
            self._refuse(teacher, attempts)
            async with teacher.semaphore:
                self._refuse(teacher, attempts)  # the breaker may have opened meanwhile
                attempts += 1
                if on_start is not None:
                    on_start()
                self.calls += 1
                t0 = time.perf_counter()
                try:
                    # within, not asyncio.wait_for: a cancel as the reply lands is not lost
                    response = await within(
                        teacher.provider.generate(request), teacher.spec.timeout_s
                    )
                    teacher.outages_in_row = 0
                    seconds = time.perf_counter() - t0
                    _check_text(response)
                    return response, attempts, seconds
                except asyncio.TimeoutError:
                    error = TeacherCallError(
                        f"no reply within {teacher.spec.timeout_s}s",
                        retryable=True,
                        reason="timeout",
                    )
                except TeacherCallError as exc:
                    error = exc
            self._count_outage(teacher, error)
            if not error.retryable or attempts > retries:
                error.attempts = attempts  # type: ignore[attr-defined]
                raise error
            delay = min(self.retry_cap_s, self.retry_base_s * 2 ** (attempts - 1))
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))

    def _refuse(self, teacher: _Teacher, attempts: int) -> None:
        """Raise at once for a teacher that changed or that the breaker took as down."""
        if teacher.changed is not None:
            raise teacher.changed
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
        teacher.outages_in_row += 1
        if teacher.down is None and teacher.outages_in_row >= breaker_threshold(teacher.spec):
            teacher.down = error.message
            if self._note is not None:
                self._note(
                    f"teacher {teacher.label()}: {teacher.outages_in_row} requests in a row "
                    f"failed to connect or timed out (last: {error.message}); sending it "
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

    def is_down(self, sid: str) -> bool:
        teacher = self._teachers[sid]
        return teacher.down is not None or teacher.changed is not None

    async def recheck(self, sid: str) -> TeacherIdentity:
        """Ask the provider again which weights stand behind the teacher.

        An in-process teacher (llamacpp) memoises ``resolve()``; its ``identify()`` is the
        file's digest, memoised by size and mtime, so an unchanged file costs one stat."""
        teacher = self._teachers[sid]
        assert teacher.provider is not None
        identify = getattr(teacher.provider, "identify", None)
        fresh = identify() if callable(identify) else teacher.provider.resolve()
        timeout = min(30.0, float(teacher.spec.timeout_s or 30.0))
        return await within(fresh, timeout)  # the watch's cancellation is never lost

    def mark_changed(self, sid: str, error: TeacherChanged) -> None:
        self._teachers[sid].changed = error

    def is_changed(self, sid: str) -> bool:
        teacher = self._teachers.get(sid)
        return teacher is not None and teacher.changed is not None

    async def aclose(self) -> None:
        for teacher in self._teachers.values():
            if teacher.provider is not None:
                await teacher.provider.aclose()


def _check_text(response: TeacherResponse) -> None:
    """A reply that is not valid Unicode is a failed row, never cached (module doc)."""
    record = response.to_record()
    where = check_record(record)
    if where is not None:
        raise TeacherCallError(
            describe_invalid(record, where), retryable=False, reason=INVALID_TEXT
        )
