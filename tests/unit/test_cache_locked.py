"""A cache.db another process keeps locked is one clear error, never a traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fdbuild.errors import CacheLocked
from fdbuild.store.rowcache import GEN, RowCache


def test_a_locked_cache_at_open_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    import diskcache

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(diskcache, "Cache", locked)
    with pytest.raises(CacheLocked) as err:
        RowCache(tmp_path / "cache")
    assert "cache.db" in err.value.message and "another process" in err.value.message


def test_a_lock_held_by_another_connection_is_one_clear_error(tmp_path: Path) -> None:
    cache = RowCache(tmp_path / "cache")
    cache.put(GEN, "x3:k", {"text": "a"})
    cache._cache._timeout = 0.05  # diskcache waits 60 s by default; the test need not
    cache._cache.close()  # reopen with the short timeout on the next use
    holder = sqlite3.connect(tmp_path / "cache" / "cache.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(CacheLocked):
            cache.put(GEN, "x3:k2", {"text": "b"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
