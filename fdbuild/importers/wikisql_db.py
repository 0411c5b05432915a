"""Read-only access to the copied WikiSQL db: table lookup (cached) and gold verification.

Every gold query is executed here before it is written. Runs are bounded by a count of
SQLite VM steps, not by a clock, so a pathological db cannot hang the import and the
outcome is the same on every machine.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fdbuild.errors import SpecError
from fdbuild.importers.wikisql_gold import (
    Column,
    Skip,
    Table,
    format_schema,
    is_numeric_type,
    is_text_type,
    quote_ident,
)
from fdbuild.importers.wikisql_release import sqlite_table_name

# A gold query may run at most this many SQLite VM steps (in units of _STEP_UNIT). WikiSQL
# tables are tiny; the budget only stops a pathological db from hanging the import, and a
# step count (unlike a clock) makes the outcome the same on every machine.
_STEP_UNIT = 1000
_STEP_BUDGET = 100_000


class Database:
    """Read-only access to the copied db: table lookup (cached) and gold verification."""

    def __init__(self, path: Path, shown_as: Path) -> None:
        self._conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        self._tables: dict[str, Table | str] = {}
        self._steps = 0
        self._conn.set_progress_handler(self._tick, _STEP_UNIT)
        try:
            # One read of the catalogue: a lookup per table would scan it every time.
            names = self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise SpecError(f"{shown_as}: not a readable SQLite database ({exc})") from None
        # SQLite identifiers are case-insensitive (ASCII), so look them up that way.
        self._names = {name.lower(): name for (name,) in names}

    def close(self) -> None:
        self._conn.close()

    def _tick(self) -> int:
        self._steps += 1
        return 1 if self._steps > _STEP_BUDGET else 0

    def table(self, table_id: str, headers: Sequence[str]) -> Table:
        """The db table for a WikiSQL table id, or Skip with why it cannot be used."""
        cached = self._tables.get(table_id)
        if cached is None:
            try:
                cached = self._inspect(sqlite_table_name(table_id), headers)
            except Skip as skip:
                cached = skip.reason
            self._tables[table_id] = cached
        if isinstance(cached, str):
            raise Skip(cached)
        return cached

    def _inspect(self, wanted: str, headers: Sequence[str]) -> Table:
        self._steps = 0
        sql_name = self._names.get(wanted.lower())
        if sql_name is None:
            raise Skip("table_not_in_db")
        try:
            info = self._conn.execute(f"PRAGMA table_info({quote_ident(sql_name)})").fetchall()
        except sqlite3.Error:
            raise Skip("schema_mismatch") from None
        columns = tuple(Column(r[1], r[2] or "", is_numeric_type(r[2] or "")) for r in info)
        if len(columns) != len(headers):
            raise Skip("schema_mismatch")
        lowercase = self._text_is_lowercase(sql_name, columns)
        return Table(
            sql_name, columns, lowercase, format_schema(sql_name, columns, headers, lowercase)
        )

    def _text_is_lowercase(self, sql_name: str, columns: Sequence[Column]) -> bool:
        """True when the table has text columns and every text cell is lower case."""
        text_columns = [quote_ident(c.name) for c in columns if is_text_type(c.decl_type)]
        if not text_columns:
            return False
        query = f"SELECT {', '.join(text_columns)} FROM {quote_ident(sql_name)}"
        self._steps = 0
        try:
            for row in self._conn.execute(query):
                if any(isinstance(v, str) and v != v.lower() for v in row):
                    return False
        except sqlite3.Error:
            return False
        return True

    def run(self, sql: str) -> list[tuple[Any, ...]]:
        """Execute a gold query within the step budget; any failure is a Skip."""
        self._steps = 0
        try:
            return self._conn.execute(sql).fetchall()
        except (sqlite3.Error, ValueError, OverflowError):
            raise Skip("gold_exec_error") from None
