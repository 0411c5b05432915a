"""The console reporter: live progress and per-node lines on stderr (stdout stays clean
for ``--json`` and piping)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from fdbuild.events import Progress


class ConsoleReporter:
    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self._live = False
        self._failures_shown = 0

    def _print(self, text: str) -> None:
        if self._live:
            self.stream.write("\r\033[K")
            self._live = False
        print(text, file=self.stream, flush=True)

    def node_started(self, node: str, kind: str, detail: str) -> None:
        if not self.quiet:
            why = f" ({detail})" if detail else ""
            self._print(f"• {node} [{kind}]{why}")

    def node_reused(self, node: str, rows: int) -> None:
        if not self.quiet:
            self._print(f"✓ {node}: unchanged, {rows} rows reused")

    def progress(self, p: Progress) -> None:
        if self.quiet or not self.tty:
            return
        elapsed = max(time.perf_counter() - p.started, 1e-9)
        finished = p.cached + p.done + p.failed
        rate = p.done / elapsed
        todo = max(p.total - finished, 0)
        eta = f"{todo / rate:.0f}s" if rate > 0 and todo else "-"
        tps = p.tokens / elapsed
        line = (f"  {p.node}: {finished}/{p.total} (cached {p.cached}, done {p.done}, "
                f"failed {p.failed}, in flight {p.in_flight}) {tps:.0f} tok/s ETA {eta}")
        self.stream.write("\r\033[K" + line[:200])
        self.stream.flush()
        self._live = True

    def node_finished(self, node: str, stats: dict[str, Any]) -> None:
        if not self.quiet:
            failed = f", {stats['failed']} failed" if stats.get("failed") else ""
            calls = f", {stats['teacher_calls']} teacher calls" if stats.get("teacher_calls") else ""
            self._print(f"✓ {node}: {stats['rows_out']} rows ({stats['cached']} cached, "
                        f"{stats['computed']} computed{failed}{calls}) in {stats['wall_s']:.2f}s")

    def row_failed(self, node: str, row_id: str, reason: str) -> None:
        self._failures_shown += 1
        if self._failures_shown <= 5:
            self._print(f"  ✗ {node} row {row_id}: {reason[:200]}")
        elif self._failures_shown == 6:
            self._print("  ✗ (more failures; all are listed in the run record)")

    def message(self, text: str) -> None:
        self._print(text)
