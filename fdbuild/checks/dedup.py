"""The ``dedup`` gate: flag rows whose field repeats an earlier row's.

FastDistill's ``DeduplicateByField`` kept an in-memory set per process and run, keyed by
the exact value, and let ``None`` keys collapse into one (so a failed hash step silently
dropped up to 50 rows). Here dedup is a table-scope check over the node's whole input:

* ``mode``: ``exact`` (the value's canonical JSON), ``normalized_text`` (case-folded,
  whitespace collapsed) or ``normalized_sql`` (sqlglot's canonical rendering, identifier
  case folded; unparsable SQL falls back to ``normalized_text``);
* the kept row of each group is the first by ``order_by`` (``descending`` to keep the
  largest, e.g. a judge score), ties broken by input order; rows without an ``order_by``
  value rank last;
* a null or empty value is never a duplicate: there is nothing to compare;
* ``dup_of`` holds the kept row's ``_id`` (the row's index when a row has no ``_id``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from fdbuild.checks.base import Check, CheckParams
from fdbuild.checks.sql_parse import normalize_sql
from fdbuild.keys import canonical_json


class DedupParams(CheckParams):
    field: str = Field(description="Column whose value identifies a duplicate.")
    mode: Literal["exact", "normalized_sql", "normalized_text"] = "exact"
    order_by: str | None = Field(None, description="Keep the first row by this column.")
    descending: bool = Field(False, description="Keep the largest order_by value instead.")
    dialect: str = Field("sqlite", description="sqlglot dialect for normalized_sql.")


class DedupCheck(Check[DedupParams]):
    """Annotates is_duplicate and dup_of (the kept row's _id)."""

    name = "dedup"
    version = "1"
    Params = DedupParams
    scope = "table"
    outputs = {"is_duplicate": "bool", "dup_of": "string"}

    def reads(self) -> Sequence[str]:
        order_by = [self.params.order_by] if self.params.order_by else []
        return [self.params.field, *order_by]

    def evaluate_table(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"is_duplicate": False, "dup_of": None} for _ in rows]
        kept: dict[str, int] = {}
        for index in self._priority(rows):
            key = self.key(rows[index].get(self.params.field))
            if key is None:
                continue
            if key in kept:
                out[index] = {"is_duplicate": True, "dup_of": _row_id(rows, kept[key])}
            else:
                kept[key] = index
        return out

    def key(self, value: Any) -> str | None:
        """The dedup key of a value in this mode; None when there is nothing to compare."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if self.params.mode == "exact":
            return canonical_json(value)
        text = value if isinstance(value, str) else canonical_json(value)
        if self.params.mode == "normalized_sql":
            normalized = normalize_sql(text.strip().rstrip(";"), self.params.dialect)
            if normalized:
                return "sql:" + normalized
        return "text:" + " ".join(text.casefold().split())

    def _priority(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Row indexes in keep-first order: by order_by (stable), missing or NaN values last."""
        indexes = list(range(len(rows)))
        column = self.params.order_by
        if not column:
            return indexes
        present = [i for i in indexes if _has_value(rows[i].get(column))]
        missing = [i for i in indexes if not _has_value(rows[i].get(column))]
        present.sort(key=lambda i: _sort_key(rows[i][column]), reverse=self.params.descending)
        return present + missing


def _has_value(value: Any) -> bool:
    """Not null and not NaN (NaN would make the sort order undefined)."""
    return value is not None and value == value


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before text before anything else, so mixed columns still sort."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (2, canonical_json(value))


def _row_id(rows: Sequence[Mapping[str, Any]], index: int) -> str:
    row_id = rows[index].get("_id")
    return str(index) if row_id is None else str(row_id)
