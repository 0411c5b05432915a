"""The ``sqlite_exec`` gate: run the candidate SQL, compare it with the gold query.

Parity with FastDistill's ``SQLiteExecEval`` (exec_pass, an error, gold_match, a result
signature; one statement only; gold results cached) with its gaps fixed:

* execution is safe and bounded (read-only open, authorizer, deadline, row cap: see
  ``sqlsafe.py``); the database file is never modified, whatever the candidate does;
* a missing database (or a file that is not one) is a load-time error naming the file,
  line and ``params.db`` key, not a silently created empty file;
* a NUL byte in the candidate is the verdict ``nul_byte``, not a crash on every build; one
  evaluation's memory is capped (``max_memory_mb``: SQLite's heap, ``memory``;
  ``max_result_mb``: the rows fetched, ``result_too_large``);
* empty SQL is ``exec_pass = False`` (``empty_sql``), not a successful no-op;
* ``exec_error`` is a bounded error class; the SQLite message goes to ``exec_detail``;
* the gold comparison honours a top-level ORDER BY in the gold query, compares numbers
  with a tolerance, and sorts nothing by ``str()`` (see ``resultset.py``);
* a failing gold query is reported in ``gold_error`` with ``gold_match = None``, never as
  a silent mismatch. ``gold_match`` is also None when the row has no gold query.

Gold results are memoised per instance (one build) by (database file identity, gold SQL),
with a lock per key so concurrent rows sharing a gold query run it once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import Field

from fdbuild.checks.base import Check, CheckParams
from fdbuild.checks.resultset import result_signature, results_match
from fdbuild.checks.sql_parse import has_top_level_order_by
from fdbuild.checks.sqlsafe import QueryResult, SafeConnection
from fdbuild.errors import FdbuildError, ParamError

K = TypeVar("K")
V = TypeVar("V")


class SqliteExecParams(CheckParams):
    db: str = Field(description="SQLite file, relative to the target file's folder.")
    sql: str = Field("sql", description="Column holding the candidate SQL.")
    gold: str | None = Field(
        "gold_sql", description="Column holding the gold SQL; null: no gold (voting only)."
    )
    timeout_ms: int = Field(2000, gt=0, description="Per-query deadline.")
    max_rows: int = Field(10000, gt=0, description="More rows than this is too_many_rows.")
    float_tol: float = Field(1e-6, ge=0, description="Numbers this close are equal.")
    max_memory_mb: int = Field(
        256, gt=0, le=1 << 20, description="SQLite heap per query; more is 'memory'."
    )
    max_result_mb: int = Field(
        64, gt=0, le=1 << 20, description="Fetched result size; more is 'result_too_large'."
    )


class _Memo(Generic[K, V]):
    """A thread-safe memo that computes each key once, even under concurrent callers."""

    def __init__(self) -> None:
        self._values: dict[K, V] = {}
        self._locks: dict[K, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: K, compute: Callable[[], V]) -> V:
        with self._guard:
            if key in self._values:
                return self._values[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = compute()
            return self._values[key]


class SqliteExecCheck(Check[SqliteExecParams]):
    """Annotates exec_pass, exec_error, exec_detail, gold_match, gold_error, result_sig."""

    name = "sqlite_exec"
    version = "2"  # 2: nul_byte, invalid_text, memory and result_too_large verdicts
    Params = SqliteExecParams
    cpu_bound = True  # each row runs a query: worker processes / Ray tasks
    outputs = {
        "exec_pass": "bool",
        "exec_error": "string",
        "exec_detail": "string",
        "gold_match": "bool",
        "gold_error": "string",
        "result_sig": "string",
    }

    def __init__(self, params: SqliteExecParams, base_dir: Path) -> None:
        super().__init__(params, base_dir)
        self.db_path = self.resolve_path(params.db)
        problem = _database_problem(self.db_path)
        if problem is not None:
            raise ParamError("db", f"{problem}: {params.db} ({self.db_path})")
        self._connections: dict[int, SafeConnection] = {}
        self._lock = threading.Lock()
        self._gold: _Memo[tuple[str, int, int, str], tuple[QueryResult, bool]] = _Memo()

    def reads(self) -> Sequence[str]:
        gold = [self.params.gold] if self.params.gold else []
        return [self.params.sql, *gold]

    def file_deps(self) -> Mapping[str, Path]:
        return {"db": self.db_path}

    def evaluate(self, row: Mapping[str, Any]) -> dict[str, Any]:
        sql = _text(row.get(self.params.sql))
        candidate = self._run(sql)
        out: dict[str, Any] = {
            "exec_pass": candidate.ok,
            "exec_error": None if candidate.error is None else candidate.error.value,
            "exec_detail": _detail(candidate),
            "gold_match": None,
            "gold_error": None,
            "result_sig": None,
        }
        ordered_candidate = candidate.ok and has_top_level_order_by(sql)
        if candidate.ok:
            out["result_sig"] = result_signature(
                candidate.rows,
                columns=candidate.columns,
                ordered=ordered_candidate,
                tol=self.params.float_tol,
            )
        gold_sql = _text(row.get(self.params.gold)) if self.params.gold else ""
        if gold_sql.strip():
            out.update(self._compare(candidate, gold_sql))
        return out

    def _compare(self, candidate: QueryResult, gold_sql: str) -> dict[str, Any]:
        """gold_match / gold_error for a candidate against one gold query."""
        gold, ordered = self._gold_result(gold_sql)
        if gold.error is not None:  # i.e. not gold.ok
            return {"gold_error": f"{gold.error.value}: {gold.detail}"}
        if not candidate.ok or candidate.columns != gold.columns:
            return {"gold_match": False}
        match = results_match(candidate.rows, gold.rows, ordered=ordered, tol=self.params.float_tol)
        return {"gold_match": match}

    def _gold_result(self, gold_sql: str) -> tuple[QueryResult, bool]:
        """The gold query's result and whether its order matters, computed once per build."""
        stat = self.db_path.stat()
        key = (str(self.db_path), stat.st_size, stat.st_mtime_ns, gold_sql)
        return self._gold.get(key, lambda: (self._run(gold_sql), has_top_level_order_by(gold_sql)))

    def _run(self, sql: str) -> QueryResult:
        return self._connection().query(
            sql,
            timeout_ms=self.params.timeout_ms,
            max_rows=self.params.max_rows,
            max_memory=self.params.max_memory_mb << 20,
            max_result=self.params.max_result_mb << 20,
        )

    def _connection(self) -> SafeConnection:
        """This thread's connection, opened on first use (sqlite3 objects are per thread)."""
        ident = threading.get_ident()
        with self._lock:
            conn = self._connections.get(ident)
        if conn is None:
            try:
                conn = SafeConnection(self.db_path)
            except sqlite3.Error as exc:
                # Not a row outcome: caching it would outlive a fix (the digest is unchanged).
                raise FdbuildError(
                    f"check 'sqlite_exec': cannot open {self.db_path}: {exc}"
                ) from exc
            with self._lock:
                self._connections[ident] = conn
        return conn

    def close(self) -> None:
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
        for conn in connections:
            conn.close()


_SQLITE_HEADER = b"SQLite format 3\x00"


def _database_problem(path: Path) -> str | None:
    """Why ``path`` cannot be the gate's database, or None. An empty file is an empty
    database to SQLite, so it passes (every query then fails on a missing table)."""
    if not path.exists():
        return "database not found"
    if not path.is_file():
        return "database is not a file"
    try:
        with open(path, "rb") as fh:
            header = fh.read(len(_SQLITE_HEADER))
    except OSError as exc:
        return f"database cannot be read ({exc.strerror})"
    if header and header != _SQLITE_HEADER:
        return "not an SQLite database"
    return None


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _detail(result: QueryResult) -> str:
    if result.ok:
        rows, columns = len(result.rows), result.columns
        return f"{rows} row{'s' * (rows != 1)}, {columns} column{'s' * (columns != 1)}"
    return result.detail
