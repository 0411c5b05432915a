"""The shapes of fdbuild.lock and run records (``fdbuild.record_schema``), the records
made from a lock entry, and when a diff leaves out a percent change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fdbuild.diff.runs import Metric, compare_metrics, compare_records
from fdbuild.lockfile import keep_replaced, load_lock, render_lock
from fdbuild.record_schema import (
    BadLockfile,
    BadRunRecord,
    ShapeError,
    check_lock,
    check_run,
    key_text,
)
from fdbuild.records import lock_record, run_kind, run_metrics, started_from_id
from fdbuild.render.diff import format_change, percent_footnote, render_text

RUN_A = "20261125T215454Z-284ba9"
RUN_B = "20261125T215537Z-704ff6"


def _entry(run: str = RUN_B, parent: str | None = RUN_A) -> dict[str, Any]:
    return {
        "file": "t.yaml",
        "run": run,
        "parent": parent,
        "overrides": [],
        "teachers": {"main": {"provider": "ollama", "model": "m", "digest": "d" * 64}},
        "nodes": {
            "q": {
                "kind": "source",
                "recipe": {"kind": "source", "path": "q.jsonl"},
                "input_digests": [],
                "output": {"digest": "x3:" + "1" * 32, "rows": 3},
            },
            "out": {
                "kind": "export",
                "recipe": {"kind": "export", "format": "jsonl"},
                "input_digests": ["x3:" + "1" * 32],
                "output": {"digest": "x3:" + "2" * 32, "rows": 3},
            },
        },
    }


def _shape_error(check: Any, data: Any) -> str:
    with pytest.raises(ShapeError) as info:
        check(data)
    return str(info.value)


# --------------------------------------------------------------------------- the lock


def test_a_good_lock_passes() -> None:
    check_lock({"schema": 1, "targets": {"t": _entry()}})
    check_lock({"schema": 1, "targets": {}})
    check_lock({"schema": 1})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(targets=[1, 2]), "targets: expected a mapping, got a list"),
        (lambda d: d["targets"].update(t=5), "targets.t: expected a mapping, got an integer"),
        (lambda d: d["targets"]["t"].pop("run"), "targets.t: missing key 'run'"),
        (
            lambda d: d["targets"]["t"].update(parent=["x"]),
            "targets.t.parent: expected a string, got a list",
        ),
        (
            lambda d: d["targets"]["t"]["nodes"]["q"].update(output=None),
            "targets.t.nodes.q.output: expected a mapping, got null",
        ),
        (
            lambda d: d["targets"]["t"]["nodes"]["q"]["output"].update(rows="3"),
            "targets.t.nodes.q.output.rows: expected an integer, got a string",
        ),
        (
            lambda d: d["targets"]["t"]["nodes"]["out"].update(input_digests=[{"a": 1}]),
            "targets.t.nodes.out.input_digests[0]: expected a string, got a mapping",
        ),
        (
            lambda d: d["targets"]["t"]["teachers"].update(main="m"),
            "targets.t.teachers.main: expected a mapping, got a string",
        ),
        (
            lambda d: d["targets"]["t"].update(overrides=[True]),
            "targets.t.overrides[0]: expected a string, got a boolean",
        ),
    ],
)
def test_a_lock_of_the_wrong_shape_names_the_key(change: Any, message: str) -> None:
    data = {"schema": 1, "targets": {"t": _entry()}}
    change(data)
    assert _shape_error(check_lock, data) == message


def test_load_lock_names_file_line_and_key_and_exits_2(tmp_path: Path) -> None:
    lock = tmp_path / "fdbuild.lock"
    text = render_lock({"schema": 1, "targets": {"t": _entry()}})
    assert load_lock(lock)["targets"] == {}  # no file: an empty lock
    lock.write_text(text.replace("rows: 3", "rows: three", 1))
    with pytest.raises(BadLockfile) as info:
        load_lock(lock)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "rows: 3" in t)
    assert f"fdbuild.lock:{line}: targets.t.nodes.out.output.rows: expected an integer" in str(
        info.value
    )
    assert info.value.exit_code == 2
    lock.write_text("schema: 2\ntargets: {}\n")
    with pytest.raises(BadLockfile, match="unknown lock schema 2"):
        load_lock(lock)
    lock.write_bytes(b"schema: 1\n\xff\xfe")
    with pytest.raises(BadLockfile, match="cannot parse"):
        load_lock(lock)


def test_key_text() -> None:
    assert key_text(()) == "(top level)"
    assert key_text(("a", "b#c", 2, "d")) == "a.b#c[2].d"
    assert _shape_error(check_lock, [1]) == "expected a mapping, got a list"


# --------------------------------------------------------------------------- run records


def _record(run_id: str = RUN_B, **extra: Any) -> dict[str, Any]:
    return {
        **lock_record("t", _entry(run_id)),
        "from_lock": False,
        "offline": False,
        "wall_s": 12.5,
        "totals": {"teacher_calls": 3, "failed": 0},
        **extra,
    }


def test_run_records_are_checked_and_must_name_their_file() -> None:
    check_run(_record(), RUN_B)
    assert (
        _shape_error(lambda d: check_run(d, RUN_A), _record())
        == f"run_id: '{RUN_B}' is not the run its file names"
    )
    assert (
        _shape_error(check_run, _record(wall_s="slow")) == "wall_s: expected a number, got a string"
    )
    assert (
        _shape_error(check_run, _record(totals={"teacher_calls": 1.5}))
        == "totals.teacher_calls: expected an integer, got a number"
    )
    assert _shape_error(check_run, _record(failures=[1])) == (
        "failures[0]: expected a mapping, got an integer"
    )
    bad = _record()
    del bad["nodes"]["q"]["kind"]
    assert _shape_error(check_run, bad) == "nodes.q: missing key 'kind'"
    assert BadRunRecord("x", path="p", detail="d").exit_code == 2


def test_a_record_made_from_a_lock_entry() -> None:
    record = lock_record("t", _entry())
    check_run(record, RUN_B)
    assert record["from_lock"] is True and record["parent"] == RUN_A
    assert record["started_at"] == "2026-11-25T21:55:37Z"
    assert started_from_id("not-a-run") is None
    metrics = run_metrics(record)
    assert metrics["rows out"] == (3, "count")
    assert metrics["teacher calls"] == (None, "count") and metrics["wall time"] == (None, "seconds")
    assert metrics["prompt tokens"] == (None, "count")


def test_keep_replaced_writes_the_old_entry_only_when_its_record_is_missing(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "fdbuild.lock"
    old = render_lock({"schema": 1, "targets": {"t": _entry(RUN_A, None)}})
    new = {"schema": 1, "targets": {"t": _entry(RUN_B, RUN_A)}}
    (written,) = keep_replaced(lock, old, new)
    assert written == tmp_path / ".fdbuild/runs/from-lock" / f"{RUN_A}.json"
    assert keep_replaced(lock, old, new) == []  # kept once
    written.unlink()
    (tmp_path / ".fdbuild/runs" / f"{RUN_A}.json").write_text("{}")
    assert keep_replaced(lock, old, new) == []  # its own record is here


# --------------------------------------------------------------------------- percent changes


def test_run_kind() -> None:
    did_work = _record()
    did_work["nodes"]["q"]["stats"] = {"computed": 3, "memo_hit": False}
    assert run_kind(did_work) is None
    noop = _record(totals={"teacher_calls": 0, "failed": 0})
    noop["nodes"]["q"]["stats"] = {"computed": 0, "memo_hit": True}
    assert run_kind(noop) == "no-op"
    assert run_kind(_record(offline=True)) == "offline"
    assert run_kind(lock_record("t", _entry())) is None  # unknown, not a no-op


def test_times_against_a_no_op_or_offline_run_have_no_percent() -> None:
    worked = _record(RUN_B, wall_s=124.94)
    worked["nodes"]["q"]["stats"] = {"computed": 3}
    noop = _record(RUN_A, wall_s=0.01, totals={"teacher_calls": 0, "failed": 0})
    noop["nodes"]["q"]["stats"] = {"memo_hit": True}
    wall = {m.name: m for m in compare_metrics(noop, worked)}["wall time"]
    assert wall.percent is None and wall.percent_omitted is not None
    assert wall.percent_omitted.startswith("A is a no-op run")
    assert format_change(wall) == "+124.93s"  # the issue's +892357% is gone
    offline = _record(RUN_A, wall_s=30.0, offline=True)
    wall = {m.name: m for m in compare_metrics(worked, offline)}["wall time"]
    assert wall.percent_omitted and wall.percent_omitted.startswith("B is an offline run")
    text = render_text(compare_records(noop, worked))
    assert "+124.93s" in text and "%)" not in text.split("wall time")[1].splitlines()[0]
    assert "no % change for wall time (A is a no-op run: its time measures cache reads" in text


def test_a_tiny_base_time_has_no_percent_and_the_footnote_says_so_once() -> None:
    short = Metric("wall time", 0.2, 3.0, "seconds", "A's time is under 1 s: a ratio says little")
    other = Metric("tokens/s g", 10.0, 20.0, "per_s", "A's time is under 1 s: a ratio says little")
    assert format_change(short) == "+2.80s"
    assert percent_footnote([short, other]) == (
        "no % change for wall time, tokens/s g (A's time is under 1 s: a ratio says little)"
    )
    assert format_change(Metric("wall time", 10.0, 15.0, "seconds")) == "+5.00s (+50%)"
    assert format_change(Metric("teacher calls", 4, 6)) == "+2 (+50%)"
    assert percent_footnote([Metric("wall time", 10.0, 15.0, "seconds")]) is None
    a = _record(RUN_A, wall_s=0.5)
    b = _record(RUN_B, wall_s=9.0)
    for r in (a, b):
        r["nodes"]["q"]["stats"] = {"computed": 3}
    wall = {m.name: m for m in compare_metrics(a, b)}["wall time"]
    assert wall.percent_omitted == "A's time is under 1 s: a ratio to it says little"
