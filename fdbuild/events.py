"""Execution emits events; reporters render them (STYLE H13).

``execute`` never prints. The console reporter draws live progress on stderr; the JSON
reporter stays silent until the CLI prints the summary; tests use ``RecordingReporter``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Progress:
    """Live counters of one node."""

    node: str
    total: int = 0
    cached: int = 0
    done: int = 0
    failed: int = 0
    in_flight: int = 0
    tokens: int = 0
    started: float = 0.0


class Reporter(Protocol):
    def node_started(self, node: str, kind: str, detail: str) -> None: ...
    def node_reused(self, node: str, rows: int) -> None: ...
    def progress(self, p: Progress) -> None: ...
    def node_finished(self, node: str, stats: dict[str, Any]) -> None: ...
    def row_failed(self, node: str, row_id: str, reason: str) -> None: ...
    def message(self, text: str) -> None: ...


@dataclass
class RecordingReporter:
    """Keeps every event; for tests."""

    events: list[tuple[str, Any]] = field(default_factory=list)

    def node_started(self, node: str, kind: str, detail: str) -> None:
        self.events.append(("started", node))

    def node_reused(self, node: str, rows: int) -> None:
        self.events.append(("reused", node))

    def progress(self, p: Progress) -> None:
        pass

    def node_finished(self, node: str, stats: dict[str, Any]) -> None:
        self.events.append(("finished", node))

    def row_failed(self, node: str, row_id: str, reason: str) -> None:
        self.events.append(("failed", (node, row_id, reason)))

    def message(self, text: str) -> None:
        self.events.append(("message", text))


class NullReporter(RecordingReporter):
    def row_failed(self, node: str, row_id: str, reason: str) -> None:
        pass
