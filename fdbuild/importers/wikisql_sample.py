"""Deterministic, streaming, nested sampling of the usable WikiSQL questions.

Each usable question gets the priority ``blake2b(seed, line index)`` and the ``limit``
lowest are kept, written in file order. The priority depends only on (seed, line), so the
same seed gives the same bytes on every machine, and a larger ``limit`` with the same seed
keeps every row of a smaller one.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field
from typing import Any


def _priority(seed: int, index: int) -> int:
    """A per-line sampling key that depends only on (seed, line): streaming and portable."""
    digest = hashlib.blake2b(f"{seed}\x00{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass
class Sampler:
    """Keeps the ``limit`` lowest-priority usable rows (all of them when limit is None)."""

    seed: int
    limit: int | None
    heap: list[tuple[int, int, dict[str, Any], bool]] = field(default_factory=list)

    def offer(self, index: int, record: dict[str, Any], empty: bool) -> None:
        item = (-_priority(self.seed, index), -index, record, empty)
        if self.limit is None or len(self.heap) < self.limit:
            heapq.heappush(self.heap, item)
        elif item > self.heap[0]:
            heapq.heapreplace(self.heap, item)

    def chosen(self) -> list[tuple[dict[str, Any], bool]]:
        """The kept rows in file order."""
        return [(rec, empty) for _, _, rec, empty in sorted(self.heap, key=lambda it: -it[1])]
