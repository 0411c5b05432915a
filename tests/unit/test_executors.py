"""Executors (issue 11, items 3-4): results in input order and identical to inline
evaluation, errors as values, worker processes for CPU-bound checks only, checks
rebuilt in a worker from their class and params (plugin files by source, file params by
value), the inline fallback for what cannot be shipped, and a worker death survived."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fdbuild.checks import get_check_class
from fdbuild.checks.base import Check, CheckParams
from fdbuild.checks.math_answer import MathAnswerCheck
from fdbuild.checks.rules import RulesCheck
from fdbuild.checks.sqlite_exec import SqliteExecCheck
from fdbuild.executors import make_executor
from fdbuild.executors.base import evaluate_all, parse_all
from fdbuild.executors.local import LocalExecutor, batch_size
from fdbuild.executors.shipping import (
    NotShippable,
    Unavailable,
    built,
    class_ref,
    run_checks,
    ship_check,
    ship_parser,
)
from fdbuild.parsers.json_ import JsonParser
from fdbuild.parsers.sql import SqlParser


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def db_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("executors")
    conn = sqlite3.connect(folder / "nums.db")
    conn.executescript(
        "CREATE TABLE t (a INTEGER, b TEXT);"
        "INSERT INTO t VALUES (1, 'x'), (2, 'y'), (3, 'z'), (4, NULL);"
    )
    conn.commit()
    conn.close()
    return folder


@pytest.fixture
def sqlite_check(db_dir: Path) -> Iterator[SqliteExecCheck]:
    check = SqliteExecCheck(SqliteExecCheck.Params(db="nums.db"), base_dir=db_dir)
    yield check
    check.close()


def sql_rows(n: int) -> list[dict[str, Any]]:
    """Passing, failing, erroring and empty candidates, with a column the check ignores."""
    shapes = [
        "SELECT a FROM t WHERE a > {k}",
        "SELECT b FROM t ORDER BY a DESC",
        "SELECT nope FROM t",
        "",
        "SELECT a, b FROM t WHERE a = {k}",
    ]
    return [
        {
            "_id": f"r{i}",
            "sql": shapes[i % len(shapes)].format(k=i % 4),
            "gold_sql": "SELECT a FROM t WHERE a > 1" if i % 3 else None,
            "prompt": "unused " * 20,
        }
        for i in range(n)
    ]


class PidParams(CheckParams):
    field: str = "text"


class PidCheck(Check[PidParams]):
    """Says which process evaluated the row; raises on a row asking it to."""

    name = "pid_check"
    version = "1"
    Params = PidParams
    cpu_bound = True
    outputs = {"pid": "int64", "echo": "string"}

    def reads(self) -> Sequence[str]:
        return [self.params.field]

    def evaluate(self, row: Mapping[str, Any]) -> dict[str, Any]:
        text = row.get(self.params.field)
        if text == "boom":
            raise ValueError("asked to fail")
        return {"pid": os.getpid(), "echo": text}


def pid_check(tmp_path: Path) -> PidCheck:
    return PidCheck(PidParams(), base_dir=tmp_path)


# --- inline ----------------------------------------------------------------------------


def test_inline_keeps_order_and_turns_raises_into_errors(tmp_path: Path) -> None:
    check = pid_check(tmp_path)
    rows = [{"text": t} for t in ["a", "boom", "c", None]]
    out = run(LocalExecutor(jobs=1).evaluate(check, rows))
    me = os.getpid()
    assert out == [
        ("ok", {"pid": me, "echo": "a"}),
        ("error", "ValueError: asked to fail"),
        ("ok", {"pid": me, "echo": "c"}),
        ("ok", {"pid": me, "echo": None}),
    ]


def test_parse_returns_columns_or_the_failure_reason() -> None:
    parser = JsonParser()
    texts = ['{"a": 1}', "no json here", "[1, 2]"]
    out = run(LocalExecutor(jobs=2).parse(parser, texts))
    assert [kind for kind, _ in out] == ["ok", "fail", "ok"]
    assert out[1] == ("fail", "no_json")
    assert out == parse_all(parser, texts)


def test_cheap_checks_never_leave_the_driver(tmp_path: Path) -> None:
    check = RulesCheck(RulesCheck.Params(field="text", min_chars=2), base_dir=tmp_path)
    executor = LocalExecutor(jobs=2)
    assert not executor.uses_pool(check)
    out = run(executor.evaluate(check, [{"text": "ab"}, {"text": "a"}]))
    assert out == evaluate_all(check, [{"text": "ab"}, {"text": "a"}])
    assert executor._pool is None


def test_cpu_bound_flags() -> None:
    assert SqliteExecCheck.cpu_bound and get_check_class("python_tests").cpu_bound
    assert not RulesCheck.cpu_bound
    numeric = MathAnswerCheck(MathAnswerCheck.Params(), base_dir=Path("."))
    symbolic = MathAnswerCheck(MathAnswerCheck.Params(symbolic=True), base_dir=Path("."))
    assert not numeric.cpu_bound and symbolic.cpu_bound


def test_batch_size_bounds() -> None:
    assert batch_size(10, 2) == 8
    assert batch_size(1000, 2) == 125
    assert batch_size(100_000, 2) == 128


# --- the process pool ------------------------------------------------------------------


def test_pool_results_identical_to_inline(sqlite_check: SqliteExecCheck) -> None:
    rows = sql_rows(203)  # not a multiple of the batch size
    executor = LocalExecutor(jobs=2, batch_rows=16, inline_while_starting=False)
    try:
        out = run(executor.evaluate(sqlite_check, rows))
    finally:
        run(executor.aclose())
    assert out == evaluate_all(sqlite_check, rows)
    assert executor.notes == []
    kinds = {value["exec_error"] for _, value in out if isinstance(value, dict)}
    assert kinds == {None, "runtime_error", "empty_sql"}


def test_pool_runs_in_other_processes_in_order(tmp_path: Path) -> None:
    check = pid_check(tmp_path)
    rows = [{"text": "boom" if i % 7 == 3 else f"t{i}"} for i in range(40)]

    async def go() -> list[Any]:
        executor = LocalExecutor(jobs=2, batch_rows=5, inline_while_starting=False)
        try:
            return await executor.evaluate(check, rows)
        finally:
            await executor.aclose()

    out = run(go())
    assert len(out) == len(rows)
    for row, (kind, value) in zip(rows, out, strict=True):
        if row["text"] == "boom":
            assert (kind, value) == ("error", "ValueError: asked to fail")
        else:
            assert kind == "ok" and value["echo"] == row["text"] and value["pid"] != os.getpid()


def test_jobs_one_runs_inline(tmp_path: Path) -> None:
    out = run(LocalExecutor(jobs=1).evaluate(pid_check(tmp_path), [{"text": "a"}]))
    assert out == [("ok", {"pid": os.getpid(), "echo": "a"})]


def test_unshippable_check_runs_inline_with_a_note(tmp_path: Path) -> None:
    class Local(PidCheck):  # defined in a function: no other process can import it
        pass

    check = Local(PidParams(), base_dir=tmp_path)
    executor = LocalExecutor(jobs=2)
    out = run(executor.evaluate(check, [{"text": "a"}, {"text": "boom"}]))
    assert out == [
        ("ok", {"pid": os.getpid(), "echo": "a"}),
        ("error", "ValueError: asked to fail"),
    ]
    assert len(executor.notes) == 1 and "cannot be imported" in executor.notes[0]
    assert executor._pool is None


PLUGIN = """
import os
from fdbuild.checks.base import Check, CheckParams


class P(CheckParams):
    field: str = "text"


class Upper(Check[P]):
    version = "1"
    Params = P
    cpu_bound = True
    outputs = {"upper": "string", "pid": "int64"}

    def reads(self):
        return [self.params.field]

    def evaluate(self, row):
        return {"upper": str(row.get(self.params.field)).upper(), "pid": os.getpid()}
"""


def test_plugin_file_check_is_rebuilt_in_the_worker_from_its_source(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(PLUGIN)
    cls = get_check_class("./mine.py:Upper", tmp_path)
    check = cls(cls.Params(), base_dir=tmp_path)
    ref = class_ref(cls)
    assert ref.source == PLUGIN.encode()
    rows = [{"text": f"w{i}"} for i in range(20)]

    async def go() -> list[Any]:
        executor = LocalExecutor(jobs=2, batch_rows=4, inline_while_starting=False)
        try:
            return await executor.evaluate(check, rows)
        finally:
            await executor.aclose()

    out = run(go())
    assert [v["upper"] for _, v in out] == [f"W{i}" for i in range(20)]
    assert all(v["pid"] != os.getpid() for _, v in out)


def test_plugin_file_edited_after_loading_is_not_shipped(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(PLUGIN)
    cls = get_check_class("./mine.py:Upper", tmp_path)
    (tmp_path / "mine.py").write_text(PLUGIN + "\n# edited\n")
    with pytest.raises(NotShippable, match="changed since it was loaded"):
        class_ref(cls)


CRASHER = """
import os
from pathlib import Path
from fdbuild.checks.base import Check, CheckParams


class P(CheckParams):
    marker: str
    always: bool = False


class Crash(Check[P]):
    version = "1"
    Params = P
    cpu_bound = True
    outputs = {"text": "string"}

    def reads(self):
        return ["text"]

    def evaluate(self, row):
        marker = Path(self.params.marker)
        if row.get("text") == "die" and (self.params.always or not marker.exists()):
            marker.touch()
            os._exit(9)  # a worker killed mid-batch
        return {"text": row.get("text")}
"""


@pytest.mark.parametrize("always", [False, True])
def test_a_dead_worker_s_batch_runs_again_once(tmp_path: Path, always: bool) -> None:
    (tmp_path / "crash.py").write_text(CRASHER)
    cls = get_check_class("./crash.py:Crash", tmp_path)
    check = cls(cls.Params(marker=str(tmp_path / "died"), always=always), base_dir=tmp_path)
    rows = [{"text": "die" if i == 5 else f"t{i}"} for i in range(12)]

    async def go() -> list[Any]:
        executor = LocalExecutor(jobs=2, batch_rows=4, inline_while_starting=False)
        try:
            return await executor.evaluate(check, rows)
        finally:
            await executor.aclose()

    out = run(go())
    assert (tmp_path / "died").exists() and len(out) == len(rows)
    if not always:  # the replacement pool ran every lost batch: nothing lost, nothing twice
        assert out == [("ok", {"text": r["text"]}) for r in rows]
    else:  # dies every time: that batch's rows are errors, the other batches' are not
        assert all(k == "error" and v.startswith("BrokenProcessPool") for k, v in out[4:8])
        assert out[:4] + out[8:] == [("ok", {"text": r["text"]}) for r in rows[:4] + rows[8:]]


# --- shipping by value (what a Ray worker gets) ----------------------------------------


def test_file_params_travel_by_value(db_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "nums.db").write_bytes((db_dir / "nums.db").read_bytes())
    check = SqliteExecCheck(SqliteExecCheck.Params(db="nums.db"), base_dir=copy)
    shipment = ship_check(check, by_value=True)
    assert shipment.files["db"][1] == (db_dir / "nums.db").read_bytes()
    expected = evaluate_all(check, sql_rows(30))
    check.close()
    (copy / "nums.db").unlink()  # the worker must not need the project's file
    rebuilt = built(shipment)
    assert not isinstance(rebuilt, Unavailable)
    assert rebuilt.db_path != copy / "nums.db" and rebuilt.db_path.exists()
    assert run_checks(shipment, sql_rows(30)) == expected
    assert built(shipment) is rebuilt  # once per process


def test_parser_shipment_round_trips() -> None:
    parser = SqlParser({"dialect": "postgres"})
    shipment = ship_parser(parser)
    rebuilt = built(shipment)
    assert type(rebuilt) is SqlParser and rebuilt.options == parser.options


def test_a_shipment_that_cannot_be_rebuilt_is_unavailable(db_dir: Path) -> None:
    check = SqliteExecCheck(SqliteExecCheck.Params(db="nums.db"), base_dir=db_dir)
    shipment = ship_check(check, by_value=False)
    check.close()
    broken = type(shipment)(
        shipment.kind,
        type(shipment.cls)("fdbuild.checks.no_such_module", "X"),
        shipment.payload,
        token="broken-token",
    )
    result = run_checks(broken, [{"sql": "SELECT 1"}])
    assert isinstance(result, Unavailable) and "ModuleNotFoundError" in result.reason


# --- make_executor ---------------------------------------------------------------------


def test_make_executor_defaults_to_local_with_the_core_count() -> None:
    executor = make_executor(SimpleNamespace())
    assert isinstance(executor, LocalExecutor) and executor.jobs >= 1
    executor = make_executor(SimpleNamespace(executor="local", jobs=3, ray_address=None))
    assert isinstance(executor, LocalExecutor) and executor.jobs == 3


def test_ray_executor_without_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    from fdbuild.errors import FdbuildError

    with pytest.raises(FdbuildError, match=r"pip install 'fdbuild\[ray\]'"):
        make_executor(SimpleNamespace(executor="ray", jobs=None, ray_address=None))


def test_a_refused_token_says_how_to_connect() -> None:
    from fdbuild.executors.ray_ import _auth_hint

    class AuthenticationError(Exception):
        pass

    try:
        try:
            raise AuthenticationError("RPC error: InvalidAuthToken")
        except AuthenticationError as cause:
            raise ConnectionError("Failed to connect to Ray cluster at h:1") from cause
    except ConnectionError as exc:
        assert "RAY_AUTH_MODE=token" in _auth_hint(exc)
    assert _auth_hint(ConnectionError("Failed to connect")) == ""


def test_rows_run_inline_until_the_workers_are_up(tmp_path: Path) -> None:
    check = pid_check(tmp_path)
    rows = [{"text": f"t{i}"} for i in range(16)]

    async def go() -> tuple[list[Any], list[Any]]:
        executor = LocalExecutor(jobs=2, batch_rows=4)
        try:
            first = await executor.evaluate(check, rows)  # starts the workers
            while not executor._started():
                await asyncio.sleep(0.05)
            return first, await executor.evaluate(check, rows)
        finally:
            await executor.aclose()

    first, later = run(go())
    assert {v["pid"] for _, v in first} == {os.getpid()}
    assert os.getpid() not in {v["pid"] for _, v in later}
    assert (
        [v["echo"] for _, v in first] == [v["echo"] for _, v in later] == [r["text"] for r in rows]
    )


class SlowPidCheck(PidCheck):
    """A row costs 20 ms: a call outlasts the workers' start."""

    name = "slow_pid_check"

    def evaluate(self, row: Mapping[str, Any]) -> dict[str, Any]:
        import time

        time.sleep(0.02)
        return super().evaluate(row)


def test_a_large_first_call_goes_to_the_workers_once_they_are_up(tmp_path: Path) -> None:
    check = SlowPidCheck(PidParams(), base_dir=tmp_path)
    rows = [{"text": f"t{i}"} for i in range(400)]  # 8 s inline

    async def go() -> list[Any]:
        executor = LocalExecutor(jobs=2, batch_rows=8)
        try:
            return await executor.evaluate(check, rows)
        finally:
            await executor.aclose()

    out = run(go())
    assert [v["echo"] for _, v in out] == [r["text"] for r in rows]
    pids = [v["pid"] for _, v in out]
    inline = pids.count(os.getpid())
    assert 0 < inline < len(rows) // 2, inline  # the start-up rows only, then the pool
    assert len(set(pids) - {os.getpid()}) == 2
