"""Node outputs as streams: written to the artifact store, or kept in memory in a dry run
(a dry run writes nothing, yet must feed downstream nodes to count their cache hits).

Verification happens here, at the two moments that need it (docs/state.md, "What is
verified, when"): ``available`` (a memo hit, no rows read) checks that the artifact and
its sidecar exist with the recorded size; ``verify`` (before a node reads an input's rows)
checks the bytes digest. A damaged artifact is moved to ``.fdbuild/quarantine/`` (not in a
dry run, which writes nothing), reported through ``warn``, and from then on is unavailable
for this build, so the node that made it is rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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

    def __init__(
        self,
        store: ArtifactStore,
        *,
        dry_run: bool,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.dry_run = dry_run
        self.warn = warn
        self._memory: dict[str, tuple[pa.Schema, list[dict[str, Any]]]] = {}
        self.damaged: dict[str, str] = {}
        """digest -> why, for artifacts found damaged during this build."""

    def writer(self, schema: pa.Schema) -> Any:
        return MemoryWriter(schema) if self.dry_run else self.store.writer(schema)

    def keep(self, writer: Any, digest: str) -> None:
        self.damaged.pop(digest, None)  # rebuilt: this build's new copy is sound
        if isinstance(writer, MemoryWriter):
            self._memory[digest] = (writer.schema, writer.rows)

    def available(self, digest: str | None, *, node: str | None = None) -> bool:
        """For a memo hit: the output is in memory, or its artifact exists with the size
        recorded when written (a truncated one is quarantined). No hashing."""
        if digest is None:
            return False
        if digest in self._memory:
            return True
        if digest in self.damaged or not self.store.exists(digest):
            return False
        if self.store.looks_intact(digest):
            return True
        self._damaged(digest, "its size differs from the one recorded when written", node)
        return False

    def verify(self, digest: str, *, node: str | None = None) -> bool:
        """Before reading an input's rows: its bytes digest (hashed once per build). False,
        after quarantining and reporting it, for a damaged or missing artifact."""
        if digest in self._memory:
            return True
        if digest in self.damaged:
            return False
        verdict = self.store.verify(digest, adopt=not self.dry_run)
        if verdict.ok:
            return True
        self._damaged(digest, verdict.reason, node)
        return False

    def _damaged(self, digest: str, reason: str, node: str | None) -> None:
        self.damaged[digest] = reason
        path = self.store.path(digest)
        where = path
        if not self.dry_run and path.exists():
            try:
                where = self.store.quarantine(digest, reason)
            except OSError:
                pass  # cannot move it: the rebuild publishes over it all the same
        if self.warn is not None:
            of = f" of node '{node}'" if node else ""
            moved = f"moved to {_short(where)}; " if where != path else "left in place (dry run); "
            self.warn(
                f"fdbuild: warning: artifact {digest}{of} ({_short(path)}) is damaged: "
                f"{reason}; {moved}rebuilding it from the row cache"
            )

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


def _short(path: Any) -> str:
    """A state path from ``.fdbuild/`` on, as a user sees it under the project root."""
    parts = list(getattr(path, "parts", ()))
    if ".fdbuild" in parts:
        return "/".join(parts[parts.index(".fdbuild") :])
    return str(path)
