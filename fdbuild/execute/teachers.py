"""Teachers during a build: one provider per teacher spec, its identity resolved once,
a concurrency bound, and retries with exponential backoff and jitter.

Retries live here, not in providers (STYLE H7). A semaphore bounds requests in flight
per teacher: no batch barriers, so one slow request never holds back the others.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fdbuild.errors import OfflineMiss, ProviderUnavailable, TeacherCallError
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

# The digest a dry run keys an unreachable, never-recorded teacher with: no row has it.
UNREACHABLE_DIGEST = "unknown:teacher-unreachable"


@dataclass
class _Teacher:
    spec: Any
    provider: Provider | None = None
    identity: TeacherIdentity | None = None
    semaphore: asyncio.Semaphore | None = None
    resolving: asyncio.Lock | None = None


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
                spec=spec, semaphore=asyncio.Semaphore(spec.concurrency), resolving=asyncio.Lock()
            )
            self._teachers[sid] = teacher
        return teacher

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
            teacher.provider = make_provider(spec)
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
            attempts += 1
            async with teacher.semaphore:
                if on_start is not None:
                    on_start()
                self.calls += 1
                t0 = time.perf_counter()
                try:
                    response = await asyncio.wait_for(
                        teacher.provider.generate(request), timeout=teacher.spec.timeout_s
                    )
                    return response, attempts, time.perf_counter() - t0
                except asyncio.TimeoutError:
                    error = TeacherCallError(
                        f"no reply within {teacher.spec.timeout_s}s",
                        retryable=True,
                        reason="timeout",
                    )
                except TeacherCallError as exc:
                    error = exc
            if not error.retryable or attempts > retries:
                error.attempts = attempts  # type: ignore[attr-defined]
                raise error
            delay = min(self.retry_cap_s, self.retry_base_s * 2 ** (attempts - 1))
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))

    async def aclose(self) -> None:
        for teacher in self._teachers.values():
            if teacher.provider is not None:
                await teacher.provider.aclose()
