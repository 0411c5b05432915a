"""``jsonl``: one JSON object per row with the chosen columns (default: all but internal)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fdbuild.exports.base import Exporter, default_columns


class JsonlExport(Exporter):
    fmt = "jsonl"

    def records(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        cols: list[str] | None = None
        for row in rows:
            if cols is None:
                cols = default_columns(self.spec, list(row))
            yield {c: row.get(c) for c in cols}
