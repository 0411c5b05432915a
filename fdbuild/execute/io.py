"""Node outputs as streams: written to the artifact store, or kept in memory in a dry run
(a dry run writes nothing, yet must feed downstream nodes to count their cache hits)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fdbuild.keys import RowsDigest
from fdbuild.store.objects import ArtifactStore

if TYPE_CHECKING:
    import pyarrow as pa


class MemoryWriter:
    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.rows: list[dict[str, Any]] = []
        self.digest = RowsDigest()

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)

    def finish(self) -> tuple[str, int]:
        self.digest.update(self.rows)
        return self.digest.hexdigest(), len(self.rows)

    def abort(self) -> None:
        self.rows = []


class Outputs:
    """Where node outputs live during one build: digest -> artifact or memory rows."""

    def __init__(self, store: ArtifactStore, *, dry_run: bool) -> None:
        self.store = store
        self.dry_run = dry_run
        self._memory: dict[str, tuple[pa.Schema, list[dict[str, Any]]]] = {}

    def writer(self, schema: pa.Schema) -> Any:
        return MemoryWriter(schema) if self.dry_run else self.store.writer(schema)

    def keep(self, writer: Any, digest: str) -> None:
        if isinstance(writer, MemoryWriter):
            self._memory[digest] = (writer.schema, writer.rows)

    def available(self, digest: str | None) -> bool:
        return digest is not None and (digest in self._memory or self.store.exists(digest))

    def schema(self, digest: str) -> pa.Schema:
        if digest in self._memory:
            return self._memory[digest][0]
        return self.store.schema(digest)

    def row_count(self, digest: str) -> int:
        """Rows of an output, without reading them (Parquet metadata)."""
        if digest in self._memory:
            return len(self._memory[digest][1])
        return self.store.row_count(digest)

    def batches(self, digest: str) -> Iterator[list[dict[str, Any]]]:
        if digest in self._memory:
            rows = self._memory[digest][1]
            for i in range(0, len(rows), 8192):
                yield rows[i : i + 8192]
            return
        yield from self.store.read_batches(digest)

    def rows(self, digest: str) -> Iterator[dict[str, Any]]:
        for batch in self.batches(digest):
            yield from batch
