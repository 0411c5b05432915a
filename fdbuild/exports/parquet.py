"""``parquet``: the chosen columns with their Arrow types (logprobs stay per-token lists)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fdbuild.exports.base import Exporter, default_columns
from fdbuild.store.atomic import publish, temp_path_for


class ParquetExport(Exporter):
    fmt = "parquet"

    def write(self, rows: Iterable[dict[str, Any]], path: Path, schema: pa.Schema) -> int:
        cols = default_columns(self.spec, schema.names)
        out_schema = pa.schema([schema.field(c) for c in cols])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path_for(path)
        count = 0
        try:
            with pq.ParquetWriter(tmp, out_schema, compression="zstd") as writer:
                batch: list[dict[str, Any]] = []
                for row in rows:
                    batch.append({c: row.get(c) for c in cols})
                    if len(batch) >= 8192:
                        writer.write_table(pa.Table.from_pylist(batch, schema=out_schema))
                        count += len(batch)
                        batch = []
                if batch or count == 0:
                    writer.write_table(pa.Table.from_pylist(batch, schema=out_schema))
                    count += len(batch)
            publish(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return count
