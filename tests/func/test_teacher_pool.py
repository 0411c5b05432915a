"""A teacher served by several hosts (``hosts:``), end to end against test servers:
the same bytes as one host, failover when a host dies mid-build, hosts that disagree
on the digest, a host down at the start, and the per-host counts in the run record."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fdbuild.lockfile import load_lock
from fdbuild.render.hosts import host_summary_lines
from tests.support.ollama_server import DEFAULT_DIGEST, DEFAULT_MODEL
from tests.support.project import ProjectDir, basic_target, questions_jsonl

TARGET = "targets/basic.yaml"
EXPORT = "targets/out/answers.jsonl"
OTHER_DIGEST = "2" * 64

pytestmark = pytest.mark.timeout(180)


def pool_target(urls: list[str], *, provider: str = "ollama", **kw: Any) -> str:
    """``basic_target`` with ``hosts:`` in place of its one host / base_url."""
    if provider == "ollama":
        text = basic_target(urls[0], **kw)
        listed = ", ".join(urls)
        return text.replace(f"host: {urls[0]}", f"hosts: [{listed}]")
    text = basic_target(urls[0], provider="openai", **kw)
    listed = ", ".join(f"{u}/v1" for u in urls)
    return text.replace(f"base_url: {urls[0]}/v1", f"hosts: [{listed}]")


def setup(project: ProjectDir, target: str, rows: int = 30) -> None:
    project.gen({"targets/data/questions.jsonl": questions_jsonl(rows), TARGET: target})


def lock_nodes(project: ProjectDir) -> Any:
    lock = load_lock(project.root / "fdbuild.lock")
    return {name: entry["nodes"] for name, entry in lock["targets"].items()}


def reference(tmp_path: Path, make_ollama_server: Any, rows: int = 30, **kw: Any) -> ProjectDir:
    """The same target built against one host."""
    one = ProjectDir(tmp_path / "one-host")
    one.root.mkdir()
    server = make_ollama_server()
    setup(one, basic_target(server.url, **kw), rows)
    one.build(TARGET)
    return one


def test_three_hosts_build_the_same_bytes_as_one(
    project: ProjectDir, make_ollama_server, tmp_path: Path
) -> None:
    servers = [make_ollama_server(latency_s=0.01) for _ in range(3)]
    setup(project, pool_target([s.url for s in servers]))
    project.build(TARGET)
    one = reference(tmp_path, make_ollama_server)
    assert project.read_bytes(EXPORT) == one.read_bytes(EXPORT)
    assert lock_nodes(project) == lock_nodes(one)  # node keys and digests: hosts unkeyed
    counts = [s.generation_count for s in servers]
    assert sum(counts) == 60 and all(c > 0 for c in counts), counts  # the load is spread

    record = project.cli("show", "@", "--json").json()
    hosts = record["hosts"]["main"]
    assert [h["url"] for h in hosts] == [s.url for s in servers]
    assert [h["requests"] for h in hosts] == counts
    assert all(h["failures"] == 0 and h["p50_s"] is not None for h in hosts)
    shown = project.cli("show", "@").stdout
    assert "hosts" in shown and all(s.url in shown for s in servers)
    summary = host_summary_lines(record)
    assert len(summary) == 1 and summary[0].startswith("  hosts main: ")
    assert all(f"{s.url} {c} req" in summary[0] for s, c in zip(servers, counts, strict=True))

    before = [s.generation_count for s in servers]
    project.build(TARGET)  # a no-op asks nothing
    assert [s.generation_count for s in servers] == before


def test_a_host_killed_mid_build_hands_its_work_to_the_others(
    project: ProjectDir, make_ollama_server, tmp_path: Path
) -> None:
    servers = [make_ollama_server(latency_s=0.03, jitter=0.5) for _ in range(3)]
    rows, generations = 60, 120
    setup(project, pool_target([s.url for s in servers]), rows)
    victim = servers[1]
    in_flight_at_kill: list[int] = []

    def kill() -> None:
        deadline = time.monotonic() + 60
        while sum(s.generation_count for s in servers) < generations // 3:
            if time.monotonic() > deadline:
                return
            time.sleep(0.002)
        in_flight_at_kill.append(victim.in_flight)
        victim.stop()

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    result = project.build(TARGET, "--json")  # exit 0: no row failed
    thread.join(timeout=10)
    assert in_flight_at_kill, "the build ended before a third of it was asked"
    assert result.json()["failed"] == 0
    one = reference(tmp_path, make_ollama_server, rows)
    assert project.read_bytes(EXPORT) == one.read_bytes(EXPORT)  # every row, same bytes

    sent = sum(s.generation_count for s in servers)
    # re-sent: at most what the dead host had in flight (its concurrency bounds it)
    assert generations <= sent <= generations + 4, (sent, in_flight_at_kill)
    hosts = {h["url"]: h for h in project.cli("show", "@", "--json").json()["hosts"]["main"]}
    assert hosts[victim.url]["benched"] >= 1 and hosts[victim.url]["failures"] >= 1
    assert all(hosts[s.url]["failures"] == 0 for s in servers if s is not victim)


def test_hosts_reporting_different_digests_stop_before_any_generation(
    project: ProjectDir, make_ollama_server
) -> None:
    a = make_ollama_server({DEFAULT_MODEL: DEFAULT_DIGEST})
    b = make_ollama_server({DEFAULT_MODEL: OTHER_DIGEST})
    setup(project, pool_target([a.url, b.url]))
    result = project.build(TARGET, expect=None)
    assert result.code not in (0, 3)
    error = [ln for ln in result.stderr.splitlines() if ln.startswith("fdbuild: error:")]
    assert len(error) == 1, result.stderr
    assert f"{a.url} has digest {DEFAULT_DIGEST}" in error[0]
    assert f"{b.url} has digest {OTHER_DIGEST}" in error[0]
    assert a.generation_count == b.generation_count == 0
    assert not (project.root / "fdbuild.lock").exists()


def test_a_host_down_at_the_start_is_benched_and_the_others_build(
    project: ProjectDir, make_ollama_server, tmp_path: Path
) -> None:
    live = make_ollama_server()
    dead = make_ollama_server()
    dead.stop()  # its port no longer answers
    setup(project, pool_target([dead.url, live.url]))
    result = project.build(TARGET)
    assert "1 of 2 hosts unreachable" in result.stderr and dead.url in result.stderr
    assert live.generation_count == 60
    one = reference(tmp_path, make_ollama_server)
    assert project.read_bytes(EXPORT) == one.read_bytes(EXPORT)

    # none answers: one clear error, nothing asked
    other = ProjectDir(tmp_path / "none")
    other.root.mkdir()
    live.stop()
    setup(other, pool_target([dead.url, live.url]))
    result = other.build(TARGET, expect=1)
    assert "none of its 2 hosts answered" in result.stderr and "Traceback" not in result.stderr


def test_openai_hosts_build_the_same_bytes_as_one_base_url(
    project: ProjectDir, make_ollama_server, tmp_path: Path
) -> None:
    servers = [make_ollama_server() for _ in range(2)]
    setup(project, pool_target([s.url for s in servers], provider="openai"))
    project.build(TARGET)
    assert all(s.generation_count > 0 for s in servers)
    one = ProjectDir(tmp_path / "one")
    one.root.mkdir()
    setup(one, basic_target(make_ollama_server().url, provider="openai"))
    one.build(TARGET)
    assert project.read_bytes(EXPORT) == one.read_bytes(EXPORT)
    assert lock_nodes(project) == lock_nodes(one)
