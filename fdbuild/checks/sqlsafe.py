"""Running one untrusted SQL query against a SQLite file without letting it do harm.

Teacher SQL is untrusted input. FastDistill opened the database read-write, so a
``CREATE TABLE`` persisted in the file and a ``DELETE`` changed what later rows saw; it
had no timeout, so a runaway recursive CTE hung the step; a missing file silently became
an empty database; empty SQL "executed" successfully. Here every layer refuses on its own,
so one mistake in one layer is not enough to touch the file:

1. **Static screening** (``screen``): a NUL character is ``nul_byte`` (sqlite3 refuses such
   text with a ValueError, which must be a verdict, not a crash); text that is not valid
   Unicode (a lone surrogate) is ``invalid_text``; empty text is ``empty_sql``; more than one statement
   (split with ``sqlite3.complete_statement``, which knows SQLite's quoting, comments and
   trigger bodies) is ``multiple_statements``; a statement opening with a write, DDL,
   PRAGMA, ATTACH, transaction or EXPLAIN keyword is ``not_read_only``.
2. **Read-only open**: URI ``file:...?mode=ro`` (never ``immutable=1``: that tells SQLite
   the file cannot change, which is not ours to promise), so the OS-level handle cannot
   write and a missing file is an error, not a new database. ``PRAGMA query_only`` and
   ``trusted_schema = OFF`` are set before anything untrusted runs.
3. **Authorizer**: only ``SQLITE_SELECT``, ``SQLITE_READ``, ``SQLITE_FUNCTION`` and
   ``SQLITE_RECURSIVE`` (needed by ``WITH RECURSIVE``) are allowed; everything else (DDL,
   DML, ATTACH, PRAGMA, including pragma table-valued functions, transactions) is denied
   at prepare time and reported as ``not_read_only``. ``load_extension`` and
   ``fts3_tokenizer`` are denied by name even though they arrive as functions.
4. **Limits**: no attached databases, 16 MiB strings/blobs, 100,000 characters of SQL.
5. **Deadline**: a progress handler aborts the statement once ``timeout_ms`` has passed
   (checked every 1,000 VM steps, fetching included), reported as ``timeout``.
6. **Row cap**: at most ``max_rows + 1`` rows are fetched; one more than allowed is
   ``too_many_rows``, so a cross join cannot exhaust memory.
7. **Memory caps**: rows are fetched one at a time and their size summed; past
   ``max_result`` the query is ``result_too_large`` (16 MiB blobs times 10,000 rows
   would otherwise all be held). While the statement runs, SQLite's hard heap limit allows
   ``max_memory`` bytes more than was in use (``sqlheap.py``); an allocation past it fails
   inside SQLite and the query is ``memory``.

A ``SafeConnection`` is used by one thread at a time (the check keeps one per thread).
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from fdbuild.checks.sqlheap import HEAP


class ExecError(str, Enum):
    """Why a query produced no result (the ``exec_error`` column)."""

    EMPTY_SQL = "empty_sql"
    SYNTAX_ERROR = "syntax_error"
    NOT_READ_ONLY = "not_read_only"
    MULTIPLE_STATEMENTS = "multiple_statements"
    TIMEOUT = "timeout"
    TOO_MANY_ROWS = "too_many_rows"
    RUNTIME_ERROR = "runtime_error"
    NUL_BYTE = "nul_byte"
    INVALID_TEXT = "invalid_text"
    MEMORY = "memory"
    RESULT_TOO_LARGE = "result_too_large"


@dataclass(frozen=True)
class QueryResult:
    """Rows and column count of a successful query, or its error class and message."""

    rows: tuple[tuple[Any, ...], ...] = ()
    columns: int = 0
    error: ExecError | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


_ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})
_ACTION_NAMES = {
    getattr(sqlite3, f"SQLITE_{name}"): name
    for name in """CREATE_INDEX CREATE_TABLE CREATE_TEMP_INDEX CREATE_TEMP_TABLE
    CREATE_TEMP_TRIGGER CREATE_TEMP_VIEW CREATE_TRIGGER CREATE_VIEW DELETE DROP_INDEX
    DROP_TABLE DROP_TEMP_INDEX DROP_TEMP_TABLE DROP_TEMP_TRIGGER DROP_TEMP_VIEW DROP_TRIGGER
    DROP_VIEW INSERT PRAGMA READ SELECT TRANSACTION UPDATE ATTACH DETACH ALTER_TABLE REINDEX
    ANALYZE CREATE_VTABLE DROP_VTABLE FUNCTION SAVEPOINT RECURSIVE""".split()
    if hasattr(sqlite3, f"SQLITE_{name}")
}
"""Authorizer action codes by name, for readable ``exec_detail`` messages."""
_WRITE_KEYWORDS = frozenset(
    """insert update delete replace merge upsert create drop alter attach detach pragma
    vacuum reindex analyze begin commit end rollback savepoint release explain""".split()
)
MAX_SQL_CHARS = 100_000
_LIMITS = {
    "SQLITE_LIMIT_ATTACHED": 0,
    "SQLITE_LIMIT_LENGTH": 1 << 24,
    "SQLITE_LIMIT_SQL_LENGTH": 4 * MAX_SQL_CHARS,  # bytes: UTF-8 needs up to 4 per char
}
_SYNTAX = re.compile(r"syntax error|incomplete input|unrecognized token", re.I)
_PROGRESS_STEPS = 1000
DEFAULT_MAX_MEMORY = 256 << 20
DEFAULT_MAX_RESULT = 64 << 20
_VALUE_OVERHEAD = 16
"""Bytes counted per value on top of its text or blob length (ints, floats, NULLs)."""


def screen(sql: str | None) -> tuple[str, QueryResult | None]:
    """The single statement to run, or the static reason it must not run."""
    text = (sql or "").strip()
    nul = text.find("\x00")
    if nul != -1:
        return "", QueryResult(error=ExecError.NUL_BYTE, detail=f"NUL character at offset {nul}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        detail = f"not valid Unicode at offset {exc.start} (a lone surrogate)"
        return "", QueryResult(error=ExecError.INVALID_TEXT, detail=detail)
    if _is_blank(text):
        return "", QueryResult(error=ExecError.EMPTY_SQL, detail="no SQL text")
    if len(text) > MAX_SQL_CHARS:
        detail = f"SQL text longer than {MAX_SQL_CHARS} characters"
        return "", QueryResult(error=ExecError.RUNTIME_ERROR, detail=detail)
    statement, rest = split_first_statement(text)
    if not _is_blank(rest):
        return "", QueryResult(
            error=ExecError.MULTIPLE_STATEMENTS,
            detail=f"text after the first statement: {rest.strip()[:60]!r}",
        )
    keyword = leading_keyword(statement)
    if keyword in _WRITE_KEYWORDS:
        return "", QueryResult(error=ExecError.NOT_READ_ONLY, detail=f"{keyword.upper()} statement")
    return statement, None


def split_first_statement(sql: str) -> tuple[str, str]:
    """(first statement, the rest), split at the first ``;`` that completes a statement.

    Only semicolons outside literals and comments are tried, so the cost stays linear
    for SQL with many ``;`` inside strings; SQLite decides at each (trigger bodies).
    """
    for end in _semicolons_outside_literals(sql):
        if sqlite3.complete_statement(sql[: end + 1]):
            return sql[: end + 1], sql[end + 1 :]
    return sql, ""


def _semicolons_outside_literals(sql: str) -> Iterator[int]:
    """Positions of ``;`` outside quotes, brackets and comments (SQLite's lexical rules)."""
    i, n = 0, len(sql)
    closers = {"'": "'", '"': '"', "`": "`", "[": "]"}
    while i < n:
        ch = sql[i]
        if ch == ";":
            yield i
        if ch in closers:
            end = sql.find(closers[ch], i + 1)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2) + 1
        else:
            i += 1
            continue
        if end <= 0:
            return
        i = end + 1


def leading_keyword(sql: str) -> str:
    """The first word of ``sql`` after whitespace, comments and opening parentheses."""
    rest = _skip_noise(sql, extra="(")
    word = re.match(r"[A-Za-z_]+", rest)
    return word.group(0).lower() if word else ""


def _skip_noise(sql: str, extra: str = "") -> str:
    """``sql`` without leading whitespace, comments and the characters in ``extra``."""
    rest = sql
    while True:
        rest = rest.lstrip(" \t\r\n\f\v" + extra)
        if rest.startswith("--"):
            newline = rest.find("\n")
            rest = "" if newline == -1 else rest[newline + 1 :]
        elif rest.startswith("/*"):
            close = rest.find("*/")
            rest = "" if close == -1 else rest[close + 2 :]
        else:
            return rest


def _is_blank(sql: str) -> bool:
    """Only whitespace, comments and stray semicolons."""
    return not _skip_noise(sql, extra=";")


class SafeConnection:
    """A read-only, authorizer-guarded, deadline-bounded connection to one SQLite file."""

    def __init__(self, db: Path) -> None:
        self._denied: list[str] = []
        self._deadline = math.inf
        self._timed_out = False
        uri = db.resolve().as_uri() + "?mode=ro"
        self._conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        try:
            self._harden()
        except BaseException:
            self._conn.close()
            raise

    def _harden(self) -> None:
        conn = self._conn
        conn.text_factory = lambda data: data.decode("utf-8", "replace")
        setlimit = getattr(conn, "setlimit", None)  # Python >= 3.11
        if setlimit is not None:
            for name, value in _LIMITS.items():
                setlimit(getattr(sqlite3, name), value)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.set_authorizer(self._authorize)
        conn.set_progress_handler(self._on_progress, _PROGRESS_STEPS)

    def _authorize(self, action: int, arg1: Any, arg2: Any, db_name: Any, source: Any) -> int:
        if action in _ALLOWED_ACTIONS:
            if action != sqlite3.SQLITE_FUNCTION or str(arg2).lower() not in _DENIED_FUNCTIONS:
                return sqlite3.SQLITE_OK
        what = " ".join(str(a) for a in (arg1, arg2) if a is not None)
        self._denied.append(f"{_ACTION_NAMES.get(action, action)}({what})")
        return sqlite3.SQLITE_DENY

    def _on_progress(self) -> int:
        if time.monotonic() > self._deadline:
            self._timed_out = True
            return 1
        return 0

    def query(
        self,
        sql: str | None,
        *,
        timeout_ms: int,
        max_rows: int,
        max_memory: int = DEFAULT_MAX_MEMORY,
        max_result: int = DEFAULT_MAX_RESULT,
    ) -> QueryResult:
        """Run one untrusted query; never raises for anything the query text can cause."""
        statement, refusal = screen(sql)
        if refusal is not None:
            return refusal
        return self.run_statement(
            statement,
            timeout_ms=timeout_ms,
            max_rows=max_rows,
            max_memory=max_memory,
            max_result=max_result,
        )

    def run_statement(
        self,
        statement: str,
        *,
        timeout_ms: int,
        max_rows: int,
        max_memory: int = DEFAULT_MAX_MEMORY,
        max_result: int = DEFAULT_MAX_RESULT,
    ) -> QueryResult:
        """Run ``statement`` without the static screening, guarded by the open mode, the
        authorizer, the deadline, the row cap and the memory caps alone (``query``
        screens first)."""
        self._denied.clear()
        self._timed_out = False
        cursor = self._conn.cursor()
        try:
            with HEAP.limit(max_memory):
                self._deadline = time.monotonic() + timeout_ms / 1000
                cursor.execute(statement)
                rows, refusal = _fetch(cursor, max_rows, max_result)
                columns = len(cursor.description or ())
        except (sqlite3.Error, sqlite3.Warning, MemoryError, ValueError, OverflowError) as exc:
            return self._classify(exc, timeout_ms, max_memory)
        finally:
            self._deadline = math.inf
            cursor.close()
        if refusal is not None:
            return refusal
        return QueryResult(rows=tuple(rows), columns=columns)

    def _classify(self, exc: BaseException, timeout_ms: int, max_memory: int) -> QueryResult:
        """Map an sqlite3 exception to its error class; our own flags are checked first."""
        message = str(exc)
        if self._timed_out:
            return QueryResult(error=ExecError.TIMEOUT, detail=f"exceeded {timeout_ms} ms")
        if isinstance(exc, MemoryError) or "out of memory" in message:
            detail = f"needed more than its {_mb(max_memory)} of SQLite heap"
            return QueryResult(error=ExecError.MEMORY, detail=detail)
        if self._denied:
            detail = "denied: " + ", ".join(self._denied[:3])
            return QueryResult(error=ExecError.NOT_READ_ONLY, detail=detail)
        if "one statement at a time" in message:
            return QueryResult(error=ExecError.MULTIPLE_STATEMENTS, detail=message)
        if "readonly database" in message:
            return QueryResult(error=ExecError.NOT_READ_ONLY, detail=message)
        if _SYNTAX.search(message):
            return QueryResult(error=ExecError.SYNTAX_ERROR, detail=message)
        return QueryResult(error=ExecError.RUNTIME_ERROR, detail=message)

    def close(self) -> None:
        self._conn.close()


def _mb(size: int) -> str:
    return f"{size / (1 << 20):g} MB"


def _fetch(
    cursor: sqlite3.Cursor, max_rows: int, max_result: int
) -> tuple[list[tuple[Any, ...]], QueryResult | None]:
    """Rows one at a time, stopping at the row cap or the result-size cap (so neither a
    cross join nor rows of large blobs are ever held whole)."""
    rows: list[tuple[Any, ...]] = []
    size = 0
    for row in cursor:
        if len(rows) == max_rows:
            return [], QueryResult(
                error=ExecError.TOO_MANY_ROWS, detail=f"more than {max_rows} rows"
            )
        size += sum(_VALUE_OVERHEAD + (len(v) if isinstance(v, (str, bytes)) else 0) for v in row)
        if size > max_result:
            detail = f"result larger than {_mb(max_result)} (at row {len(rows) + 1})"
            return [], QueryResult(error=ExecError.RESULT_TOO_LARGE, detail=detail)
        rows.append(row)
    return rows, None
