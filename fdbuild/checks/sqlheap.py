"""A memory budget for one untrusted SQLite query: SQLite's hard heap limit, set around it.

``sqlite3_hard_heap_limit64`` (SQLite >= 3.31) makes every SQLite allocation past the
limit fail with SQLITE_NOMEM, which Python's ``sqlite3`` raises as ``MemoryError``: a
query building huge blobs or sorting huge rows fails cleanly instead of taking the
machine's memory. Python's ``sqlite3`` does not expose the call, and ``PRAGMA
hard_heap_limit`` can only *lower* the limit (it could never be restored afterwards), so
the C function is called through ``ctypes`` on the library the ``_sqlite3`` module is
linked with (the one every connection in the process uses).

The limit counts all of SQLite's heap in the process (the row cache's connections too).
So the budget is made relative: while queries run, the limit is the heap in use when the
first of them started plus the sum of their budgets; when the last one ends the previous
limit (normally none) is put back. Where the function cannot be found (an SQLite older
than 3.31, or a build that does not export it), ``available`` is False and only the
result-size cap and SQLite's per-value length limit bound a query.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def _load() -> tuple[Callable[[int], int], Callable[[], int]] | None:
    try:
        import _sqlite3
        import ctypes

        lib = ctypes.CDLL(_sqlite3.__file__)
        limit: Any = lib.sqlite3_hard_heap_limit64
        used: Any = lib.sqlite3_memory_used
    except (ImportError, OSError, AttributeError):
        return None
    limit.restype, limit.argtypes = ctypes.c_int64, [ctypes.c_int64]
    used.restype, used.argtypes = ctypes.c_int64, []
    return limit, used


class HeapBudget:
    """Process-wide: the queries running at one moment share one hard heap limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, int] = {}
        self._saved = 0
        self._base = 0
        self._fns: tuple[Callable[[int], int], Callable[[], int]] | None = None
        self._loaded = False

    @property
    def available(self) -> bool:
        return self._functions() is not None

    def _functions(self) -> tuple[Callable[[int], int], Callable[[], int]] | None:
        if not self._loaded:
            self._fns, self._loaded = _load(), True
        return self._fns

    def in_use(self) -> int:
        """Bytes of SQLite heap in use in this process (0 if unknown)."""
        fns = self._functions()
        return 0 if fns is None else int(fns[1]())

    @contextmanager
    def limit(self, budget: int) -> Iterator[None]:
        """Allow about ``budget`` more bytes of SQLite heap inside the block."""
        fns = self._functions()
        if fns is None or budget <= 0:
            yield
            return
        set_limit, used = fns
        token = object()
        with self._lock:
            if not self._active:
                self._saved = int(set_limit(-1))
                self._base = int(used())
            self._active[id(token)] = budget
            set_limit(self._current())
        try:
            yield
        finally:
            with self._lock:
                del self._active[id(token)]
                set_limit(self._current() if self._active else self._saved)

    def _current(self) -> int:
        wanted = self._base + sum(self._active.values())
        return min(wanted, self._saved) if self._saved > 0 else wanted


HEAP = HeapBudget()
