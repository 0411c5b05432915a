"""The one exception tree of fdbuild.

::

    FdbuildError                 base; always carries a message (exit 1)
      SpecError                  bad target file, override or argument (exit 2)
        ParamError               a gate param the check refuses (a missing file); the graph adds file:line:key
      PlanError                  cycle, unknown target or node, unknown run name (exit 2)
      StoreError                 unreadable or corrupt state under .fdbuild/
        ArtifactCorrupt          an artifact fails verification (the build quarantines and rebuilds it)
        CacheUnreadable          SQLite cannot open or read cache.db (`fdbuild doctor --repair`)
        CacheLocked              another process holds cache.db locked (exit 1, no traceback)
        BadRunRecord             a run record does not parse or has the wrong shape (exit 2)
      LockfileError              fdbuild.lock cannot be read or written
        BadLockfile              it does not parse or has the wrong shape (exit 2)
      ProviderError              a teacher could not be used at all (exit 1)
        ProviderUnavailable      server unreachable
        ModelNotFound            the model is not on the server (`ollama pull <model>`)
        HostsDisagree            a teacher's hosts serve different weights (digests)
      TeacherCallError           one request failed; recorded per row, never cached
      OfflineMiss                `--offline` and some rows are not cached
      BuildBusy                  another build holds the project
      StoreWriteError            a write failed: disk full, quota, I/O error (exit 4)
      TeacherChanged             a teacher's digest changed during the build (exit 5)

    Terminated                   SIGTERM (a KeyboardInterrupt, like Ctrl-C; exit 143)

A failed *row* (teacher error, unparsable judge reply) is not an exception that ends
the build: the executor records it and the build exits 3.
"""

from __future__ import annotations


class FdbuildError(Exception):
    """Base of every error fdbuild raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        assert message, "an FdbuildError needs a message"
        super().__init__(message)
        self.message = message


class SpecError(FdbuildError):
    """A target file, an override or a CLI argument is wrong. Nothing was written."""

    exit_code = 2


class ParamError(SpecError):
    """A check refuses one of its params (a file it names is missing or unreadable).

    Raised by a check, which does not know where it was declared; the graph catches it
    and reports ``file:line: nodes.NODE.params.PARAM: message``."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class PlanError(FdbuildError):
    """The graph cannot be planned (cycle, unknown node) or a run name does not resolve."""

    exit_code = 2


class StoreError(FdbuildError):
    """State under .fdbuild/ is unreadable."""


class ArtifactCorrupt(StoreError):
    """An artifact's bytes or rows are not what was written. A build treats it as a miss
    (quarantine, rebuild from the row cache); other readers report it."""

    def __init__(self, message: str, *, digest: str, reason: str) -> None:
        super().__init__(message)
        self.digest = digest
        self.reason = reason


class CacheUnreadable(StoreError):
    """SQLite cannot open or read the row cache; only ``fdbuild doctor --repair`` (which
    moves it to quarantine) gets the project going again."""


class CacheLocked(StoreError):
    """Another process holds a write lock on cache.db for longer than SQLite waits."""


class LockfileError(FdbuildError):
    """fdbuild.lock cannot be parsed or written."""


class BadLockfile(LockfileError):
    """``fdbuild.lock`` does not parse, is of another schema or has the wrong shape.

    Exit 2, like a bad target file: the input is wrong and nothing was written."""

    exit_code = 2


class BadRunRecord(StoreError):
    """A run record under ``.fdbuild/runs/`` does not parse or has the wrong shape.

    ``log`` and ``diff`` skip such a record with a warning; ``show`` of it exits 2."""

    exit_code = 2

    def __init__(self, message: str, *, path: str, detail: str) -> None:
        super().__init__(message)
        self.path = path
        self.detail = detail


class ProviderError(FdbuildError):
    """A teacher cannot be used at all (not one request can succeed)."""


class ProviderUnavailable(ProviderError):
    """The teacher's server cannot be reached."""


class ModelNotFound(ProviderError):
    """The server is up but does not have the model."""


class HostsDisagree(ProviderError):
    """The hosts of one teacher (``hosts:``) report different digests for its model, or
    some lack it: the build stops before any generation, naming each host's digest."""


class TeacherCallError(FdbuildError):
    """One teacher request failed.

    ``retryable`` says whether the executor should try again (connection errors, 5xx,
    503 busy, timeouts) or record the failure at once (400s, truncation).
    """

    def __init__(self, message: str, *, retryable: bool, reason: str = "error") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.reason = reason


class OfflineMiss(FdbuildError):
    """``--offline`` was given and some results are not in the cache."""


class BuildBusy(FdbuildError):
    """Another fdbuild process holds the project's build mutex."""


class StoreWriteError(FdbuildError):
    """A write under the project failed (disk full, quota, I/O error). Every result
    finished before it is kept; the build stops at once rather than lose more."""

    exit_code = 4

    def __init__(self, message: str, *, folder: object = None, needed: int | None = None) -> None:
        super().__init__(message)
        self.folder = folder
        self.needed = needed


class TeacherChanged(FdbuildError):
    """A teacher's identity (its digest) changed while the build was asking it. What was
    cached since its last confirmed check is discarded; the next build uses the new one."""

    exit_code = 5


class Terminated(KeyboardInterrupt):
    """SIGTERM: ends a build the way Ctrl-C does (everything finished is kept), exit 143.

    A KeyboardInterrupt, not an FdbuildError: no ``except Exception`` may swallow it."""
