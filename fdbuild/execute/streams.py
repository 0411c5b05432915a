"""Rows flowing from a node to its consumers while it is still being computed.

A node that streams (``generate``, a row-scope ``gate``, ``select``) writes its output
rows in their final order to its artifact *and*, in chunks, to one bounded queue per
consumer that streams too. So a judge starts on the first finished generations while the
rest are still being asked. A queue holds at most ``BUFFER_CHUNKS`` chunks of at most
``CHUNK_ROWS`` rows: a slow consumer holds its producer back (backpressure), and memory
is bounded by the buffers, not by the rows.

The rows a consumer reads from a stream are exactly those written to the artifact, in the
same order, so its output (and digest) is the one it would compute from the artifact.
The producer's digest is known only at the end: it comes with the end-of-stream marker,
and the consumer computes its own memo key then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from fdbuild.execute.io import Outputs

CHUNK_ROWS = 256
BUFFER_CHUNKS = 8
IDLE_ROWS = 64
IDLE_S = 0.1
"""A node whose next rows are not in yet passes on what it has once it holds
``IDLE_ROWS`` rows or ``IDLE_S`` has passed since it last did: consumers start early,
without paying a chunk's fixed cost (a cache transaction, an executor batch) per row."""


def due(pending: int, since: float) -> bool:
    """Whether rows held back while waiting should be passed on now (see ``IDLE_ROWS``)."""
    return pending >= IDLE_ROWS or (pending > 0 and time.perf_counter() - since >= IDLE_S)


@dataclass(frozen=True)
class _End:
    digest: str | None


class Stream:
    """A node's output while it is being computed: its schema, then chunks of rows, then
    its digest. One bounded queue per reading consumer."""

    def __init__(self, readers: list[Any], expected_rows: int | None = None) -> None:
        self._queues: dict[Any, asyncio.Queue[list[dict[str, Any]] | _End]] = {
            r: asyncio.Queue(maxsize=BUFFER_CHUNKS) for r in readers
        }
        self.schema: asyncio.Future[pa.Schema] = asyncio.get_running_loop().create_future()
        self.expected_rows = expected_rows
        """Rows the producer expects to write, for a consumer's progress (None: unknown)."""

    def open(self, schema: pa.Schema) -> None:
        if not self.schema.done():
            self.schema.set_result(schema)

    async def send(self, rows: list[dict[str, Any]]) -> None:
        for queue in self._queues.values():
            await queue.put(rows)

    async def close(self, digest: str | None) -> None:
        for queue in self._queues.values():
            await queue.put(_End(digest))

    def input_for(self, reader: Any, ref: Any) -> Input:
        return StreamInput(self, self._queues[reader], ref)


class Input:
    """One input of a node, read in chunks of rows in the upstream's output order."""

    ref: Any
    digest: str | None

    async def schema(self) -> pa.Schema:
        raise NotImplementedError

    def chunks(self) -> AsyncIterator[list[dict[str, Any]]]:
        raise NotImplementedError

    def expected_rows(self) -> int | None:
        raise NotImplementedError

    @property
    def live(self) -> bool:
        return False


class ArtifactInput(Input):
    """A finished upstream output: its digest is known, its rows are read from the store
    (or from memory in a dry run)."""

    def __init__(self, outputs: Outputs, digest: str, ref: Any) -> None:
        self.outputs = outputs
        self.digest = self._digest = digest
        self.ref = ref

    async def schema(self) -> pa.Schema:
        return self.outputs.schema(self._digest)

    async def chunks(self) -> AsyncIterator[list[dict[str, Any]]]:
        for batch in self.outputs.batches(self._digest):
            yield batch

    def expected_rows(self) -> int | None:
        return self.outputs.row_count(self._digest)


class StreamInput(Input):
    """A live upstream: chunks as the upstream writes them; ``digest`` is set when the
    end-of-stream marker arrives."""

    def __init__(
        self, stream: Stream, queue: asyncio.Queue[list[dict[str, Any]] | _End], ref: Any
    ) -> None:
        self.stream = stream
        self.queue = queue
        self.ref = ref
        self.digest = None
        self.ended = False

    @property
    def live(self) -> bool:
        return True

    async def schema(self) -> pa.Schema:
        return await self.stream.schema

    async def chunks(self) -> AsyncIterator[list[dict[str, Any]]]:
        while not isinstance(item := await self.queue.get(), _End):
            yield item
        self.digest = item.digest
        self.ended = True

    def expected_rows(self) -> int | None:
        return self.stream.expected_rows


class Sink:
    """Where a node writes its output rows: the artifact writer, and (when consumers read
    it live) the stream, in chunks. ``write`` is synchronous; ``drain`` sends what was
    written since the last drain, and is where backpressure is felt."""

    def __init__(
        self,
        outputs: Outputs,
        stream: Stream | None,
        on_open: Callable[[Stream], None] | None = None,
    ) -> None:
        self.outputs = outputs
        self.stream = stream
        self._on_open = on_open
        self.writer: Any = None
        self._pending: list[dict[str, Any]] = []
        self._sent = time.perf_counter()

    def open(self, schema: pa.Schema) -> Any:
        self.writer = self.outputs.writer(schema)
        if self.stream is not None:
            self.stream.open(schema)
            if self._on_open is not None:
                self._on_open(self.stream)
        return self.writer

    def write(self, row: dict[str, Any]) -> None:
        self.writer.write(row)
        if self.stream is not None:
            self._pending.append(row)

    async def drain(self, final: bool = False) -> None:
        """Send the rows written so far in chunks of ``CHUNK_ROWS``; ``final``: the rest
        too (a node calls it when its next rows are not in yet, so nothing waits)."""
        if self.stream is None:
            return
        while len(self._pending) >= CHUNK_ROWS or (final and self._pending):
            chunk, self._pending = self._pending[:CHUNK_ROWS], self._pending[CHUNK_ROWS:]
            await self.stream.send(chunk)
            self._sent = time.perf_counter()

    async def idle(self) -> None:
        """The node waits for its next rows: pass on those written, when ``due``."""
        if self.stream is not None and due(len(self._pending), self._sent):
            await self.drain(final=True)
