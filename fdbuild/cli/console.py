"""The console reporter: progress and per-node lines on stderr (stdout stays clean for
``--json`` and piping).

On a terminal, two live lines per running node: a bar with rows finished of total and
the ETA, then the counts (cached, done, failed, in flight) and tokens/s. They are drawn
from the node's live ``Progress`` object at every refresh, so they always show the true
counts, even when the executor's (throttled) progress events stopped coming: a node
whose rows are all cached but one in flight shows ``39/40``, not the count at the last
event. Each line fits 80 columns; only a long node name is shortened, never a count.
Elsewhere (CI logs, pipes), plain lines, with a progress line at most every 15 seconds
so a long build still shows it is alive.

A dry run prints no per-node lines: nothing runs, and the plan printed at the end says
per node what is cached, what would be computed and why.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from fdbuild.events import Progress

PLAIN_EVERY_S = 15.0
BAR_WIDTH = 24


def _counts(p: Progress) -> str:
    return f"cached {p.cached}, done {p.done}, failed {p.failed}, in flight {p.in_flight}"


def _rates(p: Progress) -> tuple[float, str]:
    elapsed = max(time.perf_counter() - p.started, 1e-9)
    rate = p.done / elapsed
    todo = max(p.total - (p.cached + p.done + p.failed), 0)
    eta = f"{todo / rate:.0f}s" if rate > 0 and todo else "-"
    return p.tokens / elapsed, eta


class LiveBoard:
    """A rich renderable of every running node, read from the live counters each time
    it is drawn (rich's Live redraws it five times a second)."""

    def __init__(self) -> None:
        self.nodes: dict[str, Progress] = {}

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        width = options.max_width
        for name, p in list(self.nodes.items()):
            tps, eta = _rates(p)
            finished = p.cached + p.done + p.failed
            tail = f" {finished}/{p.total or '?'}  ETA {eta}"
            head = Table.grid(padding=(0, 1))
            name_width = max(8, width - BAR_WIDTH - len(tail) - 6)
            head.add_column(width=name_width, no_wrap=True, overflow="ellipsis")
            head.add_column(width=BAR_WIDTH)
            head.add_column(no_wrap=True)
            bar = ProgressBar(total=float(p.total) if p.total else None, completed=finished)
            head.add_row(Text(f"  {name}", overflow="ellipsis"), bar, Text(tail))
            yield head
            yield Text(f"    {_counts(p)}, {tps:.0f} tok/s", no_wrap=True, overflow="crop")


class ConsoleReporter:
    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        quiet: bool = False,
        dry_run: bool = False,
        tty: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.dry_run = dry_run
        self.tty = self.stream.isatty() if tty is None else tty
        self._failures_shown = 0
        self._last_plain = 0.0
        self._live: Any = None
        self._board = LiveBoard()

    # output ---------------------------------------------------------------------
    def _print(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def _show(self, p: Progress) -> None:
        """Put a node on the live board (the board then follows ``p`` by itself)."""
        self._board.nodes[p.node] = p
        if self._live is None:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, force_terminal=True if self.tty else None)
            self._live = Live(self._board, console=console, transient=True, refresh_per_second=5)
            self._live.start()

    def _drop(self, node: str) -> None:
        self._board.nodes.pop(node, None)
        if self._live is not None and not self._board.nodes:
            self._live.stop()
            self._live = None

    # Reporter -------------------------------------------------------------------
    def node_started(self, node: str, kind: str, detail: str) -> None:
        if not self.quiet and not self.dry_run:
            why = f" ({detail})" if detail else ""
            self._print(f"• {node} [{kind}]{why}")

    def node_reused(self, node: str, rows: int) -> None:
        if not self.quiet and not self.dry_run:
            self._print(f"✓ {node}: unchanged, {rows} rows reused")

    def progress(self, p: Progress) -> None:
        if self.quiet or self.dry_run:
            return
        if self.tty:
            self._show(p)
        elif time.monotonic() - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = time.monotonic()
            tps, eta = _rates(p)
            finished = p.cached + p.done + p.failed
            self._print(
                f"  {p.node}: {finished}/{p.total} ({_counts(p)}) {tps:.0f} tok/s ETA {eta}"
            )

    def node_finished(self, node: str, stats: dict[str, Any]) -> None:
        self._drop(node)
        if not self.quiet and not self.dry_run:
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
        """Stop any live board (an interrupted or failed build leaves none behind)."""
        for node in list(self._board.nodes):
            self._drop(node)
