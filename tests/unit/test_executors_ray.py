"""The Ray executor against a running Ray cluster (issue 11, item 4): results identical to
inline and in order, file params and plugin sources shipped by value (a worker never
reads the project's copy), and a worker killed mid-batch costs nothing but a re-run."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from fdbuild.checks import get_check_class
from fdbuild.checks.sqlite_exec import SqliteExecCheck
from fdbuild.executors import make_executor
from fdbuild.executors.base import evaluate_all, parse_all
from fdbuild.parsers.json_ import JsonParser
from tests.support.ray_cluster import ray_address, worker_pids_from  # noqa: F401
from tests.unit.test_executors import sql_rows

SLOW = """
import os
import time
from pathlib import Path

from fdbuild.checks.base import Check, CheckParams


class P(CheckParams):
    data: str
    pids: str
    sleep_s: float = 0.0


class Slow(Check[P]):
    version = "1"
    Params = P
    cpu_bound = True
    outputs = {"echo": "string", "data": "string", "where": "string"}

    def reads(self):
        return ["text"]

    def file_deps(self):
        return {"data": self.resolve_path(self.params.data)}

    def evaluate(self, row):
        Path(self.params.pids, str(os.getpid())).touch()
        time.sleep(self.params.sleep_s)
        path = self.resolve_path(self.params.data)
        return {"echo": row.get("text"), "data": path.read_text(), "where": str(path)}
"""


def slow_check(folder: Path, sleep_s: float) -> Any:
    (folder / "slow.py").write_text(SLOW)
    (folder / "data.txt").write_text("shipped by value")
    (folder / "pids").mkdir()
    cls = get_check_class("./slow.py:Slow", folder)
    params = cls.Params(data="data.txt", pids=str(folder / "pids"), sleep_s=sleep_s)
    return cls(params, base_dir=folder)


def ray_executor(address: str, **kwargs: Any) -> Any:
    from fdbuild.executors.ray_ import RayExecutor

    return RayExecutor(address=address, **kwargs)


def test_sqlite_exec_and_parses_on_ray_are_identical_to_inline(
    ray_address: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    conn = sqlite3.connect(tmp_path / "nums.db")
    conn.executescript("CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1,'x'),(2,'y');")
    conn.commit()
    conn.close()
    check = SqliteExecCheck(SqliteExecCheck.Params(db="nums.db"), base_dir=tmp_path)
    rows = sql_rows(150)
    texts = ['{"a": 1}', "no json", "[2]"] * 20
    parser = JsonParser()

    async def go() -> tuple[list[Any], list[Any], list[str]]:
        executor = make_executor(
            type("O", (), {"executor": "ray", "ray_address": ray_address, "jobs": None})()
        )
        assert executor.name == "ray"
        try:
            evaluated = await executor.evaluate(check, rows)
            parsed = await executor.parse(parser, texts)
            return evaluated, parsed, list(executor.notes)
        finally:
            await executor.aclose()

    evaluated, parsed, notes = asyncio.run(go())
    assert notes == []
    assert evaluated == evaluate_all(check, rows)
    assert parsed == parse_all(parser, texts)
    check.close()


def test_workers_get_files_and_plugin_source_by_value(
    ray_address: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    check = slow_check(tmp_path, sleep_s=0.0)
    rows = [{"text": f"t{i}"} for i in range(10)]

    async def go() -> list[Any]:
        executor = ray_executor(ray_address, batch_rows=3)
        try:
            return await executor.evaluate(check, rows)
        finally:
            await executor.aclose()

    out = asyncio.run(go())
    assert [kind for kind, _ in out] == ["ok"] * 10
    assert [v["echo"] for _, v in out] == [r["text"] for r in rows]
    assert {v["data"] for _, v in out} == {"shipped by value"}
    project_copy = str(tmp_path / "data.txt")
    assert all(v["where"] != project_copy for _, v in out)  # a worker-local copy
    assert os.getpid() not in worker_pids_from(tmp_path / "pids")


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
    ray_address: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    check = slow_check(tmp_path, sleep_s=0.2)
    rows = [{"text": f"t{i}"} for i in range(16)]
    pids = tmp_path / "pids"

    async def go() -> tuple[list[Any], int]:
        executor = ray_executor(ray_address, batch_rows=4)
        try:
            task = asyncio.ensure_future(executor.evaluate(check, rows))
            deadline = time.monotonic() + 60
            while not worker_pids_from(pids) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            victim = worker_pids_from(pids)[0]  # a worker in the middle of a batch
            os.kill(victim, signal.SIGKILL)
            return await task, victim
        finally:
            await executor.aclose()

    out, victim = asyncio.run(go())
    assert [kind for kind, _ in out] == ["ok"] * 16  # every row, once, in order
    assert [v["echo"] for _, v in out] == [r["text"] for r in rows]
    assert {v["data"] for _, v in out} == {"shipped by value"}
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)  # it is dead, and its batch was run again elsewhere
    assert len(worker_pids_from(pids)) >= 2
