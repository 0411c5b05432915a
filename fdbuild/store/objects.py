"""Content-addressed node outputs: Parquet files named by the digest of their rows.

``objects/ab/<digest>.parquet``, with its bytes digest beside it in
``<digest>.parquet.sum`` (see ``fdbuild.store.verify``). Writing streams batches into a
temp file while hashing the rows' canonical JSON; ``finish`` hashes the file's bytes,
writes the sidecar, then renames the file to its digest. Readers verify the bytes before
streaming rows: a damaged artifact raises ``ArtifactCorrupt`` (the build quarantines it
and rebuilds the node), never yields wrong rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fdbuild.errors import ArtifactCorrupt
from fdbuild.keys import HASH_PREFIX, RowsDigest, file_digest
from fdbuild.store.atomic import publish, temp_path_for
from fdbuild.store.quarantine import quarantine
from fdbuild.store.verify import (
    Verdict,
    looks_intact,
    read_sidecar,
    sidecar_path,
    verify_artifact,
    write_sidecar,
)

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 8192


class ArtifactStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._verified: dict[str, tuple[int, int]] = {}
        """digest -> (size, mtime_ns) of the file when it last passed verification: each
        artifact is hashed once per process, however many times it is read."""

    @property
    def state_dir(self) -> Path:
        return self.directory.parent

    def path(self, digest: str) -> Path:
        name = digest.split(":", 1)[-1]
        return self.directory / name[:2] / f"{name}.parquet"

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def looks_intact(self, digest: str) -> bool:
        """Exists, and its size is the one recorded when written (no hashing)."""
        return looks_intact(self.path(digest))

    def verify(self, digest: str, *, adopt: bool = True) -> Verdict:
        """Check the artifact's bytes digest (once per process while the file is unchanged).

        A legacy artifact (no sidecar) is checked by its rows digest; when it passes and
        ``adopt`` is set, its sidecar is written so the next check only hashes bytes."""
        path = self.path(digest)
        try:
            st = path.stat()
        except OSError:
            return Verdict(False, "missing")
        stamp = (st.st_size, st.st_mtime_ns)
        if self._verified.get(digest) == stamp:
            return Verdict(True, size=st.st_size)
        verdict = verify_artifact(path)
        if verdict.ok:
            if verdict.legacy and adopt and verdict.bytes_digest:
                try:
                    write_sidecar(path, verdict.bytes_digest, verdict.size, verdict.rows or 0)
                except OSError:
                    pass  # a read-only store: checked again next time, still correct
            self._verified[digest] = stamp
        return verdict

    def require(self, digest: str) -> None:
        """Raise ``ArtifactCorrupt`` unless the artifact verifies."""
        verdict = self.verify(digest)
        if not verdict.ok:
            raise ArtifactCorrupt(
                f"artifact {digest} ({self.path(digest)}) is damaged: {verdict.reason}; "
                "run `fdbuild doctor --repair`, then build again to recreate it",
                digest=digest,
                reason=verdict.reason,
            )

    def quarantine(self, digest: str, reason: str) -> Path:
        """Move a damaged artifact (and its sidecar) to ``.fdbuild/quarantine/``."""
        self._verified.pop(digest, None)
        path = self.path(digest)
        dest = quarantine(self.state_dir, path, reason, extra={"digest": digest})
        side = sidecar_path(path)
        if side.exists():
            os.replace(side, dest.with_name(dest.name + side.name[len(path.name) :]))
        return dest

    def writer(self, schema: pa.Schema) -> ArtifactWriter:
        return ArtifactWriter(self, schema)

    def read_batches(
        self, digest: str, batch_rows: int = BATCH_ROWS
    ) -> Iterator[list[dict[str, Any]]]:
        """Verified rows, in batches. Raises ``ArtifactCorrupt`` before yielding any row of a
        damaged artifact."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.require(digest)
        path = self.path(digest)
        try:
            pf = pq.ParquetFile(path)
            for batch in pf.iter_batches(batch_size=batch_rows):
                yield batch.to_pylist()
        except (OSError, pa.ArrowException) as exc:  # changed after it was verified
            self._verified.pop(digest, None)
            raise ArtifactCorrupt(
                f"artifact {digest} ({path}) is unreadable: {exc}",
                digest=digest,
                reason=f"not readable Parquet ({exc})",
            ) from None

    def schema(self, digest: str) -> pa.Schema:
        import pyarrow.parquet as pq

        return self._metadata(digest, lambda path: pq.read_schema(path))

    def row_count(self, digest: str) -> int:
        import pyarrow.parquet as pq

        return int(self._metadata(digest, lambda path: pq.ParquetFile(path).metadata.num_rows))

    def _metadata(self, digest: str, read: Any) -> Any:
        import pyarrow as pa

        path = self.path(digest)
        try:
            return read(path)
        except (OSError, pa.ArrowException) as exc:
            raise ArtifactCorrupt(
                f"artifact {digest} ({path}) is missing or unreadable: {exc}",
                digest=digest,
                reason=f"not readable Parquet ({exc})",
            ) from None

    def all_digests(self) -> Iterator[str]:
        if not self.directory.exists():
            return
        for path in self.directory.glob("*/*.parquet"):
            yield HASH_PREFIX + path.stem

    def orphan_sidecars(self) -> Iterator[Path]:
        """Sidecars whose artifact is gone (a crash between the two writes, or a deletion)."""
        if not self.directory.exists():
            return
        for side in self.directory.glob("*/*.parquet.sum"):
            if not side.with_name(side.name.removesuffix(".sum")).exists():
                yield side


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
        size = self._tmp.stat().st_size
        bytes_digest = file_digest(self._tmp)
        # Always publish, even over an existing file of the same name: that one may be the
        # damaged copy this build is replacing. Sidecar first, so a published artifact
        # always has one (a crash in between leaves an orphan sidecar, which gc removes).
        side = read_sidecar(final)
        if side is None or side.get("bytes") != bytes_digest or side.get("size") != size:
            write_sidecar(final, bytes_digest, size, self.digest.count)
        publish(self._tmp, final)
        st = final.stat()
        self.store._verified[digest] = (st.st_size, st.st_mtime_ns)
        return digest, self.digest.count

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            if self._tmp.exists():
                self._tmp.unlink()
