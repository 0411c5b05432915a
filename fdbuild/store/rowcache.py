"""The row cache: finished generations and gate evaluations, keyed by content.

Backed by diskcache (SQLite in WAL mode), so each ``put`` is committed when it returns:
a kill -9 right after keeps it. Eviction is off: a cached result is only dropped by
``fdbuild gc``. Failures are never put here (SPEC 3).

Key spaces: ``g:`` generations, ``t:`` truncated generations (kept only for nodes with
``on_truncation: keep``; a ``fail`` node never sees them, so it asks again), ``e:`` gate
evaluations, ``m:`` node memos (a node's recipe + input digest -> its output digest, so
an unchanged node skips row lookups).

Every record carries its own checksum (``fdbuild.store.records``): SQLite's own checks
do not see a same-length edit of a value. A record that fails it is deleted, reported
through ``warn`` naming its key, and treated as missing, so it is recomputed. ``has``
checks too (without unpickling), so a caller that skips work on ``has`` never skips a
damaged record. A ``cache.db`` SQLite cannot open or read raises ``CacheUnreadable``
naming the file and ``fdbuild doctor --repair``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from fdbuild.errors import CacheLocked, CacheUnreadable
from fdbuild.store.records import RecordDamaged, decode, encode, intact

GEN = "g:"
TRUNCATED = "t:"
EVAL = "e:"
MEMO = "m:"

WARN_AT_MOST = 10
"""Bad records named one by one; after that, one line with the count (doctor lists all)."""

_CORRUPT_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB


def is_corruption(exc: BaseException) -> bool:
    """True for SQLite errors that mean the file is damaged (not: locked, disk full)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _CORRUPT_CODES
    return type(exc) is sqlite3.DatabaseError or "malformed" in str(exc)


def unreadable_message(directory: Path, exc: BaseException) -> str:
    return (
        f"the row cache {directory / 'cache.db'} cannot be read by SQLite ({exc}). "
        "Run `fdbuild doctor --repair`: it moves the cache to .fdbuild/quarantine/, and the "
        "next build starts with an empty cache (it asks the teachers again for every "
        "generation and evaluation that was cached)"
    )


class Unpicklable:
    """A stored value that could not even be fetched (a legacy pickle that is damaged)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class RowCache:
    def __init__(
        self,
        directory: Path,
        *,
        readonly: bool = False,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.directory = directory
        self.warn = warn
        """Where warnings about damaged records go (the build sets its reporter's)."""
        self.bad: list[str] = []
        """Keys (with their space) of damaged records found and dropped by this instance."""
        self._cache: Any = None
        if directory.exists() or not readonly:
            import diskcache

            try:
                self._cache = diskcache.Cache(
                    str(directory),
                    size_limit=2**62,
                    eviction_policy="none",
                    cull_limit=0,
                    statistics=False,
                )
            except sqlite3.DatabaseError as exc:
                if is_corruption(exc):
                    raise CacheUnreadable(unreadable_message(directory, exc)) from None
                if _is_locked(exc):
                    raise CacheLocked(_locked_message(directory)) from None
                raise

    @contextmanager
    def _sqlite(self) -> Iterator[None]:
        """SQLite corruption found mid-way becomes the one clear message."""
        try:
            yield
        except _timeout_type() as exc:  # diskcache's own: it gave up waiting for the lock
            raise CacheLocked(_locked_message(self.directory)) from exc
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                raise CacheUnreadable(unreadable_message(self.directory, exc)) from None
            if _is_locked(exc):
                raise CacheLocked(_locked_message(self.directory)) from None
            raise

    def _raw(self, full_key: str) -> Any:
        """The stored value; a legacy value diskcache cannot unpickle is a damaged record.
        (Plain try/except, not ``_sqlite()``: this runs once per row in hot loops.)"""
        try:
            return self._cache.get(full_key)
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                raise CacheUnreadable(unreadable_message(self.directory, exc)) from None
            if _is_locked(exc):
                raise CacheLocked(_locked_message(self.directory)) from None
            raise
        except _timeout_type() as exc:  # a lock, not a damaged record: never dropped
            raise CacheLocked(_locked_message(self.directory)) from exc
        except Exception as exc:
            return Unpicklable(f"does not unpickle ({type(exc).__name__})")

    def _drop(self, full_key: str, why: str) -> None:
        self.bad.append(full_key)
        with self._sqlite():
            self._cache.delete(full_key)
        if self.warn is None:
            return
        if len(self.bad) <= WARN_AT_MOST:
            self.warn(
                f"fdbuild: warning: cache record {full_key} is damaged ({why}); "
                "dropped, it will be recomputed"
            )
        elif len(self.bad) == WARN_AT_MOST + 1:
            self.warn(
                "fdbuild: warning: more damaged cache records (each dropped and recomputed); "
                "`fdbuild doctor` lists them all"
            )

    # generations and evaluations -------------------------------------------------
    def has(self, space: str, key: str) -> bool:
        """True only for an intact record (checksum checked; not unpickled)."""
        if self._cache is None:
            return False
        full = space + key
        raw = self._raw(full)
        if raw is None:
            return False
        why = raw.reason if isinstance(raw, Unpicklable) else intact(full, raw)
        if why:
            self._drop(full, why)
            return False
        return True

    def get(self, space: str, key: str) -> dict[str, Any] | None:
        if self._cache is None:
            return None
        full = space + key
        raw = self._raw(full)
        if raw is None:
            return None
        try:
            if isinstance(raw, Unpicklable):
                raise RecordDamaged(raw.reason)
            return decode(full, raw)
        except RecordDamaged as exc:
            self._drop(full, exc.reason)
            return None

    def get_raw(self, space: str, key: str) -> Any:
        """The stored value as is (``fdbuild doctor``)."""
        return None if self._cache is None else self._raw(space + key)

    def put(self, space: str, key: str, record: dict[str, Any]) -> None:
        """Idempotent: the same key always maps to an equivalent result."""
        assert self._cache is not None, "cache opened read-only"
        full = space + key
        value = encode(full, record)
        with self._sqlite():
            self._cache.set(full, value)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group many cheap puts in one transaction (gate evaluations)."""
        ctx = self._cache.transact() if self._cache is not None else nullcontext()
        with self._sqlite(), ctx:
            yield

    # maintenance -----------------------------------------------------------------
    def keys(self, space: str) -> Iterator[str]:
        if self._cache is None:
            return
        with self._sqlite():
            for k in self._cache.iterkeys():
                if isinstance(k, str) and k.startswith(space):
                    yield k[len(space) :]

    def delete(self, space: str, key: str) -> None:
        if self._cache is not None:
            with self._sqlite():
                self._cache.delete(space + key)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()


def _timeout_type() -> type[Exception]:
    import diskcache

    return diskcache.Timeout


def _is_locked(exc: sqlite3.DatabaseError) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _locked_message(directory: Path) -> str:
    return (
        f"the row cache {directory / 'cache.db'} stayed locked by another process (SQLite "
        "waited 60 s). fdbuild builds never hold it that long (each takes the build mutex "
        "first): look for another program with the file open (`fuser` or `lsof`), end it, "
        "and run the same command again; nothing was lost"
    )
