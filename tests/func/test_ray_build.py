"""``fdbuild build --executor ray`` against a running Ray cluster (issue 11, items 4-5):
the state it leaves (node digests, exports) is byte for byte a local build's, the work
did go to Ray, and a Ray worker killed with SIGKILL mid-build costs a re-run of its
batch, never a lost or duplicated row."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fdbuild.executors import ray_ as ray_executor
from tests.func.test_engine_digests import digests
from tests.func.test_text2sql import copy_recipe
from tests.support.project import ProjectDir
from tests.support.ray_cluster import ray_address, worker_pids_from  # noqa: F401

TEXT2SQL = "targets/text2sql_sft.yaml"


@pytest.fixture
def ray_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the Ray executor sends to the cluster."""
    sent: list[int] = []
    original = ray_executor.RayExecutor._gather

    async def spy(self: Any, task: Any, ref: Any, batches: list[list[Any]]) -> list[Any]:
        sent.extend(len(b) for b in batches)
        return await original(self, task, ref, batches)

    monkeypatch.setattr(ray_executor.RayExecutor, "_gather", spy)
    return sent


def test_text2sql_on_ray_is_byte_identical_to_a_local_build(
    tmp_path: Path,
    ollama_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    ray_address: str,  # noqa: F811
    ray_batches: list[int],
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    local, on_ray = ProjectDir(tmp_path / "local"), ProjectDir(tmp_path / "ray")
    for project in (local, on_ray):
        project.root.mkdir()
        copy_recipe(project, ollama_server)
    local.build(TEXT2SQL, "--executor", "local", "--jobs", "1")
    assert ray_batches == []
    summary = on_ray.build(TEXT2SQL, "--executor", "ray", "--ray-address", ray_address, "--json")
    nodes = summary.json()["nodes"]
    assert nodes["executed"]["computed"] == 40 and nodes["sql"]["computed"] == 40
    # the 40 sqlite_exec evaluations and the 40 parses went to the cluster
    assert sum(ray_batches) == 80
    assert digests(on_ray) == digests(local)
    assert on_ray.read_bytes("out/text2sql_sft.jsonl") == local.read_bytes("out/text2sql_sft.jsonl")


SLOW = """
import os
import time
from pathlib import Path

from fdbuild.checks.base import Check, CheckParams


class P(CheckParams):
    data: str
    pids: str
    sleep_s: float = 0.1


class Slow(Check[P]):
    version = "1"
    Params = P
    cpu_bound = True
    outputs = {"echo": "string", "data": "string"}

    def reads(self):
        return ["text"]

    def file_deps(self):
        return {"data": self.resolve_path(self.params.data)}

    def evaluate(self, row):
        Path(self.params.pids, str(os.getpid())).touch()  # the test's folder, to find a victim
        time.sleep(self.params.sleep_s)
        return {"echo": row.get("text"), "data": self.resolve_path(self.params.data).read_text()}
"""

ROWS = 24


def slow_project(root: Path, pids: Path) -> ProjectDir:
    root.mkdir()
    pids.mkdir()
    project = ProjectDir(root)
    project.gen(
        {
            "data/rows.jsonl": "".join(
                json.dumps({"id": f"r{i:02d}", "text": f"row {i}"}) + "\n" for i in range(ROWS)
            ),
            "targets/slow.py": SLOW,
            "targets/data.txt": "by value",
            "targets/slow.yaml": textwrap.dedent(
                f"""\
                fdbuild: 1
                name: slow
                nodes:
                  rows:
                    kind: source
                    path: ../data/rows.jsonl
                  checked:
                    kind: gate
                    input: rows
                    check: ./slow.py:Slow
                    params: {{data: data.txt, pids: {json.dumps(str(pids))}}}
                  out:
                    kind: export
                    input: checked
                    format: jsonl
                    path: ../out/slow.jsonl
                """
            ),
        }
    )
    return project


def test_a_ray_worker_killed_mid_build_loses_and_duplicates_no_row(
    tmp_path: Path,
    ray_address: str,  # noqa: F811
    ray_batches: list[int],
) -> None:
    pids = tmp_path / "pids"
    project = slow_project(tmp_path / "ray", pids)
    killed: list[int] = []

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 120
        while not worker_pids_from(pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        if worker_pids_from(pids):
            victim = worker_pids_from(pids)[0]  # evaluating a row of its batch right now
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    summary = project.build(
        "targets/slow.yaml", "--executor", "ray", "--ray-address", ray_address, "--json"
    ).json()
    killer.join(10)
    assert killed, "no Ray worker evaluated a row"
    assert summary["nodes"]["checked"]["computed"] == ROWS
    assert summary["nodes"]["checked"]["failed"] == 0
    assert sum(ray_batches) == ROWS
    rows = [json.loads(line) for line in project.read("out/slow.jsonl").splitlines()]
    assert [r["id"] for r in rows] == [f"r{i:02d}" for i in range(ROWS)]  # each once, in order
    assert all(r["echo"] == r["text"] and r["data"] == "by value" for r in rows)

    # the same target built locally, inline: the same bytes, and a rebuild computes nothing
    local = slow_project(tmp_path / "local", tmp_path / "pids-local")
    local.build("targets/slow.yaml", "--jobs", "1")
    assert project.read_bytes("out/slow.jsonl") == local.read_bytes("out/slow.jsonl")
    again = project.build(
        "targets/slow.yaml", "--executor", "ray", "--ray-address", ray_address, "--json"
    ).json()
    assert (
        again["nodes"]["checked"]["computed"] == 0 and again["nodes"]["checked"]["cached"] == ROWS
    )


def test_executor_ray_without_ray_is_exit_2_saying_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    project = slow_project(tmp_path / "p", tmp_path / "pids")
    monkeypatch.setattr(builtins, "__import__", no_ray)
    result = project.build("targets/slow.yaml", "--executor", "ray", expect=2)
    assert "pip install 'fdbuild[ray]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project.root / "out").exists()
