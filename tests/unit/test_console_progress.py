"""The live progress board: true counts from the live Progress object, 80 columns, no
ellipsis in the counts; a dry run prints no per-node lines (issue 10)."""

from __future__ import annotations

import io
import time

from rich.console import Console

from fdbuild.cli.console import ConsoleReporter, LiveBoard
from fdbuild.events import Progress


def draw(board: LiveBoard, width: int = 80) -> str:
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=True, color_system=None).print(board)
    return out.getvalue()


def test_the_board_shows_the_live_counts_not_the_last_event() -> None:
    board = LiveBoard()
    p = Progress(node="quickstart#sql", total=40, started=time.perf_counter())
    board.nodes[p.node] = p
    p.cached, p.in_flight = 39, 1  # changed after the node was put on the board
    text = draw(board)
    assert "39/40" in text and "cached 39, done 0, failed 0, in flight 1" in text
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_large_counts_fit_80_columns_and_only_a_long_name_is_shortened() -> None:
    board = LiveBoard()
    name = "a_long_target_name_for_sure#and_a_long_generate_node_name"
    board.nodes[name] = Progress(
        node=name,
        total=24000,
        cached=12000,
        done=11999,
        failed=1,
        in_flight=256,
        tokens=10**7,
        started=time.perf_counter() - 10,
    )
    lines = draw(board).splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "24000/24000" in lines[0] and "a_long_target" in lines[0]
    assert "cached 12000, done 11999, failed 1, in flight 256" in lines[1]
    assert "…" not in lines[1]


def test_a_dry_run_prints_no_node_lines() -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(out, dry_run=True)
    reporter.node_started("t#sql", "generate", "new node")
    reporter.progress(Progress(node="t#sql", total=4))
    reporter.node_finished(
        "t#sql",
        {"rows_out": 0, "cached": 0, "computed": 0, "teacher_calls": 0, "wall_s": 0.0},
    )
    reporter.node_reused("t#q", 4)
    reporter.message("teacher main unreachable: using the digest recorded in fdbuild.lock")
    reporter.close()
    assert out.getvalue() == "teacher main unreachable: using the digest recorded in fdbuild.lock\n"


def test_a_tty_reporter_draws_the_board_and_removes_it_when_done() -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(out, tty=True)
    p = Progress(node="t#sql", total=4, started=time.perf_counter())
    reporter.progress(p)
    p.cached = 4
    reporter.node_finished(
        "t#sql", {"rows_out": 4, "cached": 4, "computed": 0, "teacher_calls": 0, "wall_s": 0.1}
    )
    reporter.close()
    assert "✓ t#sql: 4 rows (4 cached, 0 computed)" in out.getvalue()
    assert reporter._live is None
