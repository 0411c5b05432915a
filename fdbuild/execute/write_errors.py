"""Write failures (disk full, quota, I/O error) as one clear error instead of a traceback.

A full disk shows up in many shapes: ``OSError`` with ``ENOSPC`` from a plain write or an
fsync, pyarrow's ``OSError(28, 'Error writing bytes to file ...')``, SQLite's
``OperationalError('database or disk is full')`` from the row cache (diskcache), or
``disk I/O error``. ``is_write_error`` recognises them all; ``writing(folder, needed)``
turns one raised inside it into ``StoreWriteError`` naming the folder, the space the
write needed (when the caller can estimate it) and what is free on that disk, so the
build ends with one message (exit 4) and no traceback. Nothing finished is lost: each
cached result was committed on its own before the failing write.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from fdbuild.errors import StoreWriteError

# errno values that mean "this write cannot succeed until the disk changes".
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS})
_SQLITE_NAMES = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY")
_SQLITE_TEXTS = ("database or disk is full", "disk i/o error", "readonly database")

Needed = int | Callable[[], int | None] | None


def is_write_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk refused a write (not a bug, not a missing file)."""
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        text = str(exc).lower()
        return name.startswith(_SQLITE_NAMES) or any(t in text for t in _SQLITE_TEXTS)
    return isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS


def what_failed(exc: BaseException) -> str:
    """A short, lower-case description: ``no space left on device``."""
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
        import os

        return os.strerror(exc.errno).lower()
    text = str(exc).strip() or type(exc).__name__
    return f"SQLite says '{text}'"


def human(size: int) -> str:
    """Bytes for people, in the units of ``df -h`` and ``mount -o size=3m``: ``2.1 KiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _existing(folder: Path) -> Path:
    """The folder, or its nearest existing parent (disk_usage needs a real path)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def write_error(exc: BaseException, folder: Path, needed: int | None = None) -> StoreWriteError:
    """The one message a build ends with when a write under ``folder`` failed."""
    folder = folder.absolute()
    space = ""
    try:
        usage = shutil.disk_usage(_existing(folder))
        space = f"{human(usage.free)} free of {human(usage.total)} on that disk"
    except OSError:
        space = "free space unknown"
    need = f"it needed about {human(needed)} more; " if needed else ""
    err = StoreWriteError(
        f"cannot write to {folder}: {what_failed(exc)} ({need}{space}). Every result "
        "finished before it is kept: free some space there (or move the project to a "
        "bigger disk) and run the same command again; only what never finished is redone",
        folder=folder,
        needed=needed,
    )
    return err


@contextmanager
def writing(folder: Path, needed: Needed = None) -> Iterator[None]:
    """Turn a write error raised inside into ``StoreWriteError`` (others pass through).

    ``needed`` is the size of the write, or a callable estimating what the unfinished
    work still needs (called only on failure)."""
    try:
        yield
    except StoreWriteError:
        raise
    except Exception as exc:
        if not is_write_error(exc):
            raise
        estimate = needed() if callable(needed) else needed
        raise write_error(exc, folder, estimate) from None
