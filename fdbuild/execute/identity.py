"""Teacher identity during a build: re-checked while the build runs, and at its end.

The identity (the digest that names the weights) is part of every generation key, and
it is resolved once when a node first needs it. Weights can change under a running
build (``ollama pull`` of the same tag, a GGUF file replaced), and every reply served
after that would be cached under the old digest. So the watch:

* asks each teacher in use for its identity again every ``interval_s`` seconds (default
  10, ``$FDBUILD_IDENTITY_CHECK_S``) and once more when the graph has run;
* journals every row-cache write of the build that came from a teacher (generations,
  judge replies and evaluations) and every node memo, in order;
* on a confirmed, unchanged digest forgets the journal up to the moment that check was
  *sent* (replies finished before it came from the digest it reported);
* on a changed digest (or a model that is gone) deletes from the row cache everything
  journaled since that teacher's last confirmed check (its rows, and every memo), makes
  the pool refuse further calls to it, and ends the build with ``TeacherChanged``
  (exit 5) naming the teacher and both digests. The next build resolves the new digest,
  so those rows are asked again under their right keys.

A teacher that cannot be reached for a re-check is not taken as changed (an outage is
the circuit breaker's business); its journal is kept until a check succeeds.

A teacher with several hosts (``hosts:``) is re-checked host by host: any host whose
digest changed (or that lost the model) is a change of the teacher, named with that
host; the journal is confirmed only when every host that could be asked reported the
old digest and none was out of reach (a benched host whose probe fails is not asked; a
host excluded at its return for other weights never served, and is not asked either).
"""

from __future__ import annotations

import asyncio
import pickle
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fdbuild.errors import TeacherChanged
from fdbuild.execute.teachers import RECHECK_UNREACHABLE, TeacherPool
from fdbuild.execute.write_errors import Needed, writing
from fdbuild.spec.load import LoadedTarget
from fdbuild.store.rowcache import RowCache


@dataclass(frozen=True)
class _Entry:
    seq: int
    teacher: str | None
    """The pool's teacher id, or None for a node memo (dropped on any teacher's change)."""
    space: str
    key: str


class IdentityWatch:
    """The build's teacher-derived cache writes, and the checks that confirm them."""

    def __init__(
        self,
        pool: TeacherPool,
        cache: RowCache,
        *,
        interval_s: float,
        enabled: bool,
    ) -> None:
        self.pool = pool
        self.cache = cache
        self.interval_s = interval_s
        self.enabled = enabled
        self._seq = 0
        self._journal: deque[_Entry] = deque()
        self._confirmed: dict[str, int] = {}  # teacher id -> seq its last check confirmed
        self._confirmed_at: dict[str, float] = {}
        self.checks = 0
        self._closed = False

    # the journal --------------------------------------------------------------------
    def track(self, target: LoadedTarget, name: str) -> str:
        """A node resolved this teacher's identity: watch it from now on."""
        sid = self.pool.teacher_id(target, name)
        if sid not in self._confirmed:
            self._confirmed[sid] = self._seq
            self._confirmed_at[sid] = time.time()
        return sid

    def put(
        self,
        teacher: str | None,
        space: str,
        key: str,
        record: dict[str, Any],
        needed: Needed = None,
    ) -> bool:
        """Cache one record and journal it; False (nothing written) when ``teacher``
        changed: a reply that arrives after the change is never cached."""
        if teacher is not None and self.pool.is_changed(teacher):
            return False
        with writing(self.cache.directory, needed or (lambda: _size(record))):
            self.cache.put(space, key, record)
        if self.enabled:
            self._journal.append(_Entry(self._seq, teacher, space, key))
            self._seq += 1
        return True

    def _trim(self) -> None:
        oldest = min(self._confirmed.values(), default=self._seq)
        while self._journal and self._journal[0].seq < oldest:
            self._journal.popleft()

    def _discard(self, sid: str) -> int:
        since = self._confirmed.get(sid, 0)
        doomed = [
            e for e in self._journal if e.seq >= since and (e.teacher is None or e.teacher == sid)
        ]
        for entry in doomed:
            self.cache.delete(entry.space, entry.key)
        kept = set(map(id, doomed))
        self._journal = deque(e for e in self._journal if id(e) not in kept)
        return sum(1 for e in doomed if e.teacher is not None)

    # the checks ---------------------------------------------------------------------
    async def loop(self, stop: Callable[[BaseException], None]) -> None:
        """Check every ``interval_s`` until cancelled; a change (or an error of the
        watch itself: it must not die silently) stops the build through ``stop``."""
        try:
            while not self._closed:
                await asyncio.sleep(self.interval_s)
                if not self._closed:
                    await self.check()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the build, which raises it
            stop(exc)

    def close(self) -> None:
        """End ``loop`` at its next turn. The build closes the watch before cancelling
        it, so a cancellation lost inside a teacher's lookup (``asyncio.wait_for``
        before Python 3.12 loses one that lands as the reply arrives; a plugin teacher
        may use it) cannot keep the watch, and the build waiting for it, alive."""
        self._closed = True

    async def check(self) -> None:
        """Re-check every teacher in use; raises ``TeacherChanged`` on the first change."""
        if not self.enabled:
            return
        self.checks += 1
        for sid in list(self._confirmed):
            if self.pool.is_down(sid):
                continue
            mark = self._seq  # what was journaled before this check was sent
            old = self.pool.current(sid)
            confirmed = True
            for url, new_digest in await self.pool.recheck_hosts(sid):
                if new_digest == RECHECK_UNREACHABLE:
                    confirmed = False  # confirmed later, or the breaker opens
                elif new_digest != old.digest:
                    raise self._changed(sid, old.digest, new_digest, url)
            if confirmed:
                self._confirmed[sid] = mark
                self._confirmed_at[sid] = time.time()
        self._trim()

    def _changed(self, sid: str, old: str, new: str | None, url: str) -> TeacherChanged:
        when = time.strftime("%H:%M:%S", time.localtime(self._confirmed_at[sid]))
        dropped = self._discard(sid)
        now = f"is now {new}" if new else "is no longer on the server"
        where = f" on host {url}" if self.pool.host_count(sid) > 1 else ""
        error = TeacherChanged(
            f"teacher {self.pool.label(sid)} changed during the build{where}: its digest was {old} "
            f"and {now}. The {dropped} result(s) it gave since its identity was last "
            f"confirmed ({when}) were discarded, and it was asked nothing more. Run the "
            "same command again to build against the new digest"
        )
        self.pool.mark_changed(sid, error)
        return error


def _size(record: dict[str, Any]) -> int | None:
    """About how many bytes a record takes in the cache (for a disk-full message)."""
    try:
        return len(pickle.dumps(record, protocol=5))
    except Exception:  # noqa: BLE001 - only an estimate
        return None
