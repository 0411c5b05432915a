"""The row cache: finished generations and gate evaluations, keyed by content.

Backed by diskcache (SQLite in WAL mode), so each ``put`` is committed when it returns:
a kill -9 right after keeps it. Eviction is off: a cached result is only dropped by
``fdbuild gc``. Failures are never put here (SPEC 3).

Key spaces: ``g:`` generations, ``t:`` truncated generations (kept only for nodes with
``on_truncation: keep``; a ``fail`` node never sees them, so it asks again), ``e:`` gate
evaluations, ``m:`` node memos (a node's recipe + input digest -> its output digest, so
an unchanged node skips row lookups).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

GEN = "g:"
TRUNCATED = "t:"
EVAL = "e:"
MEMO = "m:"


class RowCache:
    def __init__(self, directory: Path, *, readonly: bool = False) -> None:
        self.directory = directory
        self._cache: Any = None
        if directory.exists() or not readonly:
            import diskcache

            self._cache = diskcache.Cache(
                str(directory),
                size_limit=2**62,
                eviction_policy="none",
                cull_limit=0,
                statistics=False,
            )

    # generations and evaluations -------------------------------------------------
    def has(self, space: str, key: str) -> bool:
        return self._cache is not None and (space + key) in self._cache

    def get(self, space: str, key: str) -> dict[str, Any] | None:
        if self._cache is None:
            return None
        return self._cache.get(space + key)

    def put(self, space: str, key: str, record: dict[str, Any]) -> None:
        """Idempotent: the same key always maps to an equivalent result."""
        assert self._cache is not None, "cache opened read-only"
        self._cache.set(space + key, record)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group many cheap puts in one transaction (gate evaluations)."""
        ctx = self._cache.transact() if self._cache is not None else nullcontext()
        with ctx:
            yield

    # maintenance -----------------------------------------------------------------
    def keys(self, space: str) -> Iterator[str]:
        if self._cache is None:
            return
        for k in self._cache.iterkeys():
            if isinstance(k, str) and k.startswith(space):
                yield k[len(space) :]

    def delete(self, space: str, key: str) -> None:
        if self._cache is not None:
            self._cache.delete(space + key)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
