"""The identity watch's journal: what a change discards and what a confirmed check keeps;
and which exceptions count as a failed write (disk full) rather than a bug."""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from fdbuild.errors import StoreWriteError, TeacherChanged
from fdbuild.execute.identity import IdentityWatch
from fdbuild.execute.teachers import TeacherPool
from fdbuild.execute.write_errors import is_write_error, writing
from fdbuild.providers import Provider, TeacherIdentity, TeacherRequest, TeacherResponse
from fdbuild.spec.model import LlamaCppTeacher
from fdbuild.store.rowcache import EVAL, GEN, MEMO, RowCache


class FileTeacher(Provider):
    """An in-process teacher: resolve() is memoised, identify() reads the 'file'."""

    name = "llamacpp"

    def __init__(self) -> None:
        self.digest = "sha256:" + "a" * 64
        self.identified = 0

    async def resolve(self) -> TeacherIdentity:
        raise AssertionError("a re-check must not reload an in-process model")

    async def identify(self) -> TeacherIdentity:
        self.identified += 1
        return TeacherIdentity(provider="llamacpp", model="m", digest=self.digest)

    async def generate(self, request: TeacherRequest) -> TeacherResponse:
        return TeacherResponse(text="ok")


def watched(tmp_path: Path) -> tuple[IdentityWatch, RowCache, FileTeacher, str]:
    cache = RowCache(tmp_path / "cache")
    pool = TeacherPool(offline=False, recorded={})
    spec = LlamaCppTeacher(provider="llamacpp", model_path="m.gguf")
    target = SimpleNamespace(spec=SimpleNamespace(teachers={"main": spec}))
    provider = FileTeacher()
    teacher = pool._get(target, "main")  # type: ignore[arg-type]
    teacher.provider = provider
    teacher.identity = TeacherIdentity(provider="llamacpp", model="m", digest=provider.digest)
    watch = IdentityWatch(pool, cache, interval_s=0.01, enabled=True)
    sid = watch.track(target, "main")  # type: ignore[arg-type]
    return watch, cache, provider, sid


def test_a_change_discards_only_what_came_after_the_last_confirmed_check(tmp_path: Path) -> None:
    watch, cache, provider, sid = watched(tmp_path)
    watch.put(sid, GEN, "before", {"text": "old weights"})
    watch.put(None, MEMO, "memo-before", {"digest": "x", "rows": 1})
    asyncio.run(watch.check())  # unchanged: confirms both
    watch.put(sid, GEN, "after", {"text": "maybe new weights"})
    watch.put(sid, EVAL, "judged", {"score": 1.0})
    watch.put(None, MEMO, "memo-after", {"digest": "y", "rows": 1})
    watch.put("another-teacher", GEN, "other", {"text": "not this teacher"})
    provider.digest = "sha256:" + "b" * 64  # the file was replaced
    with pytest.raises(TeacherChanged) as info:
        asyncio.run(watch.check())
    message = info.value.message
    assert "a" * 64 in message and "b" * 64 in message and "'main'" in message
    assert cache.has(GEN, "before") and cache.get(MEMO, "memo-before") is not None
    assert not cache.has(GEN, "after") and not cache.has(EVAL, "judged")
    assert cache.get(MEMO, "memo-after") is None
    assert cache.has(GEN, "other")
    # a reply arriving after the change is never cached
    assert watch.put(sid, GEN, "late", {"text": "new weights"}) is False
    assert not cache.has(GEN, "late")
    assert provider.identified == 2  # identify(), never a model reload
    cache.close()


def test_nothing_is_journaled_when_the_watch_is_off(tmp_path: Path) -> None:
    cache = RowCache(tmp_path / "cache")
    watch = IdentityWatch(
        TeacherPool(offline=True, recorded={}), cache, interval_s=1, enabled=False
    )
    watch.put(None, GEN, "k", {"text": "t"})
    asyncio.run(watch.check())
    assert cache.has(GEN, "k") and not watch._journal
    cache.close()


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        OSError(errno.EIO, "Input/output error"),
        sqlite3.OperationalError("database or disk is full"),
        sqlite3.OperationalError("disk I/O error"),
    ],
    ids=["enospc", "pyarrow", "edquot", "eio", "sqlite-full", "sqlite-ioerr"],
)
def test_write_errors_become_one_message_naming_the_folder(tmp_path: Path, exc: Exception) -> None:
    assert is_write_error(exc)
    with pytest.raises(StoreWriteError) as info, writing(tmp_path / "cache", 2048):
        raise exc
    err = info.value
    assert err.exit_code == 4
    assert str(tmp_path / "cache") in err.message
    assert "needed about 2.0 KiB more" in err.message and "free of" in err.message


@pytest.mark.parametrize(
    "exc",
    [
        FileNotFoundError(errno.ENOENT, "No such file"),
        sqlite3.OperationalError("database is locked"),
        ValueError("a bug"),
    ],
    ids=["enoent", "locked", "bug"],
)
def test_other_errors_pass_through(tmp_path: Path, exc: Exception) -> None:
    assert not is_write_error(exc)
    with pytest.raises(type(exc)), writing(tmp_path):
        raise exc
