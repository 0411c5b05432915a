"""The console reporter: progress and per-node lines on stderr (stdout stays clean for
``--json`` and piping).

On a terminal, a rich progress bar per running node (total, cached, done, failed, in
flight, tokens/s, ETA). Elsewhere (CI logs, pipes), plain lines, with a progress line at
most every 15 seconds so a long build still shows it is alive.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from fdbuild.events import Progress

PLAIN_EVERY_S = 15.0


def _counts(p: Progress) -> str:
    return f"cached {p.cached}, done {p.done}, failed {p.failed}, in flight {p.in_flight}"


def _rates(p: Progress) -> tuple[float, str]:
    elapsed = max(time.perf_counter() - p.started, 1e-9)
    rate = p.done / elapsed
    todo = max(p.total - (p.cached + p.done + p.failed), 0)
    eta = f"{todo / rate:.0f}s" if rate > 0 and todo else "-"
    return p.tokens / elapsed, eta


class ConsoleReporter:
    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self._failures_shown = 0
        self._last_plain = 0.0
        self._bars: Any = None
        self._tasks: dict[str, Any] = {}

    # output ---------------------------------------------------------------------
    def _print(self, text: str) -> None:
        if self._bars is not None:
            self._bars.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def _bar(self, node: str) -> Any:
        if self._bars is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bars = Progress(
                TextColumn("  {task.description}"),
                BarColumn(bar_width=30),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                console=Console(file=self.stream),
                transient=True,
                refresh_per_second=5,
            )
            self._bars.start()
        if node not in self._tasks:
            self._tasks[node] = self._bars.add_task(node, total=None, detail="")
        return self._tasks[node]

    def _drop_bar(self, node: str) -> None:
        task = self._tasks.pop(node, None)
        if task is not None and self._bars is not None:
            self._bars.remove_task(task)
        if self._bars is not None and not self._tasks:
            self._bars.stop()
            self._bars = None

    # Reporter -------------------------------------------------------------------
    def node_started(self, node: str, kind: str, detail: str) -> None:
        if not self.quiet:
            why = f" ({detail})" if detail else ""
            self._print(f"• {node} [{kind}]{why}")

    def node_reused(self, node: str, rows: int) -> None:
        if not self.quiet:
            self._print(f"✓ {node}: unchanged, {rows} rows reused")

    def progress(self, p: Progress) -> None:
        if self.quiet:
            return
        tps, eta = _rates(p)
        finished = p.cached + p.done + p.failed
        if self.tty:
            task = self._bar(p.node)
            self._bars.update(
                task,
                total=p.total or None,
                completed=finished,
                detail=f"{_counts(p)}  {tps:.0f} tok/s  ETA {eta}",
            )
        elif time.monotonic() - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = time.monotonic()
            self._print(
                f"  {p.node}: {finished}/{p.total} ({_counts(p)}) {tps:.0f} tok/s ETA {eta}"
            )

    def node_finished(self, node: str, stats: dict[str, Any]) -> None:
        self._drop_bar(node)
        if not self.quiet:
            failed = f", {stats['failed']} failed" if stats.get("failed") else ""
            calls = (
                f", {stats['teacher_calls']} teacher calls" if stats.get("teacher_calls") else ""
            )
            self._print(
                f"✓ {node}: {stats['rows_out']} rows ({stats['cached']} cached, "
                f"{stats['computed']} computed{failed}{calls}) in {stats['wall_s']:.2f}s"
            )

    def row_failed(self, node: str, row_id: str, reason: str) -> None:
        self._failures_shown += 1
        if self._failures_shown <= 5:
            self._print(f"  ✗ {node} row {row_id}: {reason[:200]}")
        elif self._failures_shown == 6:
            self._print("  ✗ (more failures; all are listed in the run record)")

    def message(self, text: str) -> None:
        self._print(text)

    def close(self) -> None:
        """Stop any live bar (an interrupted or failed build leaves none behind)."""
        for node in list(self._tasks):
            self._drop_bar(node)
