"""Content-addressed node outputs: Parquet files named by the digest of their rows.

``objects/ab/<digest>.parquet``. Writing streams batches into a temp file while hashing
the rows' canonical JSON; ``finish`` renames it to its digest (or drops it if that
digest exists already: same rows, same bytes' meaning). Readers stream batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fdbuild.errors import StoreError
from fdbuild.keys import RowsDigest
from fdbuild.store.atomic import publish, temp_path_for

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 8192


class ArtifactStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, digest: str) -> Path:
        name = digest.split(":", 1)[-1]
        return self.directory / name[:2] / f"{name}.parquet"

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def writer(self, schema: pa.Schema) -> ArtifactWriter:
        return ArtifactWriter(self, schema)

    def read_batches(
        self, digest: str, batch_rows: int = BATCH_ROWS
    ) -> Iterator[list[dict[str, Any]]]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.path(digest)
        try:
            pf = pq.ParquetFile(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise StoreError(
                f"artifact {digest} is missing or unreadable ({path}): {exc}; "
                "run the build again to recreate it"
            ) from None
        for batch in pf.iter_batches(batch_size=batch_rows):
            yield batch.to_pylist()

    def schema(self, digest: str) -> pa.Schema:
        import pyarrow.parquet as pq

        return pq.read_schema(self.path(digest))

    def row_count(self, digest: str) -> int:
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.path(digest)).metadata.num_rows

    def all_digests(self) -> Iterator[str]:
        if not self.directory.exists():
            return
        from fdbuild.keys import HASH_PREFIX

        for path in self.directory.glob("*/*.parquet"):
            yield HASH_PREFIX + path.stem


class ArtifactWriter:
    """Streams rows into a temp Parquet file; ``finish()`` publishes it by digest."""

    def __init__(self, store: ArtifactStore, schema: pa.Schema) -> None:
        self.store = store
        self.schema = schema
        self.digest = RowsDigest()
        store.directory.mkdir(parents=True, exist_ok=True)
        self._tmp = temp_path_for(store.directory / "artifact.parquet")
        import pyarrow.parquet as pq

        self._writer = pq.ParquetWriter(self._tmp, schema, compression="zstd")
        self._pending: list[dict[str, Any]] = []

    def write(self, row: dict[str, Any]) -> None:
        self._pending.append(row)
        if len(self._pending) >= BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        self.digest.update(self._pending)
        import pyarrow as pa

        table = pa.Table.from_pylist(self._pending, schema=self.schema)
        self._writer.write_table(table)
        self._pending = []

    def finish(self) -> tuple[str, int]:
        self._flush()
        self._writer.close()
        digest = self.digest.hexdigest()
        final = self.store.path(digest)
        if final.exists():
            self._tmp.unlink()
        else:
            publish(self._tmp, final)
        return digest, self.digest.count

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            if self._tmp.exists():
                self._tmp.unlink()
