"""A full disk mid-build: one clear message, nothing finished lost, and a rebuild on a
bigger disk that exports exactly what a build that never ran out of space exports.

The project lives on a real 3 MiB tmpfs (root may mount one; CI runs as root). A build
that cannot mount one skips, saying so; everywhere it can, the test runs.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fdbuild.store.rowcache import GEN, RowCache
from tests.support.project import ProjectDir, basic_target, questions_jsonl

TARGET = "targets/basic.yaml"
ROWS = 400  # x n=2: 800 replies of ~4 KiB, about 3.2 MiB of cache for a 3 MiB disk
FDBUILD = [sys.executable, "-m", "fdbuild"]
REPO = Path(__file__).resolve().parents[2]


def long_reply(request: dict[str, Any]) -> str:
    """~4 KiB of deterministic text per request, in fewer pieces than num_predict (200)."""
    seed = hashlib.sha256(
        json.dumps([request["messages"], request["options"]], sort_keys=True).encode()
    ).hexdigest()
    words = []
    block = seed
    while len(words) < 150:
        block = hashlib.sha256(block.encode()).hexdigest()
        words.append(block[:26])
    return " ".join(words)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"mounting a tmpfs is not permitted here ({exc})")
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


def make_project(root: Path, url: str) -> ProjectDir:
    root.mkdir(parents=True, exist_ok=True)
    project = ProjectDir(root)
    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(ROWS),
            TARGET: basic_target(url, max_chars=100_000),
        }
    )
    return project


@pytest.mark.timeout(240)
def test_full_disk_stops_with_one_message_and_the_rebuild_heals(
    small_disk: Path, tmp_path: Path, make_ollama_server
) -> None:
    server = make_ollama_server(responder=long_reply)
    small = make_project(small_disk / "proj", server.url)

    t0 = time.monotonic()
    proc = subprocess.Popen(
        [*FDBUILD, "build", TARGET],
        cwd=small.root,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"the build hung on a full disk (killed after 60 s):\n{err}") from None
    elapsed = time.monotonic() - t0
    assert proc.returncode == 4, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("fdbuild: error:")]
    assert len(errors) == 1, err
    assert str(small.root / ".fdbuild") in errors[0]
    assert "free of 3.0 MiB" in errors[0] and "needed about" in errors[0]
    assert elapsed < 60
    asked_small = server.generation_count
    assert 0 < asked_small < 2 * ROWS  # it stopped part way
    assert not (small.root / "fdbuild.lock").exists()

    # Move the project to a bigger disk and build again: only what never finished is asked.
    big = ProjectDir(tmp_path / "big")
    shutil.copytree(small.root, big.root, symlinks=True)
    cache = RowCache(big.root / ".fdbuild" / "cache")
    kept = sum(1 for _ in cache.keys(GEN))
    cache.close()
    assert kept > 0
    before = server.generation_count
    res = big.build(TARGET, "--json")
    assert res.json()["failed"] == 0
    assert server.generation_count - before == 2 * ROWS - kept

    reference = make_project(tmp_path / "reference", server.url)
    reference.build(TARGET)
    assert big.read_bytes("targets/out/answers.jsonl") == reference.read_bytes(
        "targets/out/answers.jsonl"
    )
    assert len(big.read("targets/out/answers.jsonl").splitlines()) == 2 * ROWS


def test_a_failed_artifact_write_is_one_message_and_keeps_the_replies(
    project: ProjectDir, ollama_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any write, not only the row cache's: here the generate node's Parquet file."""
    from fdbuild.store.objects import ArtifactWriter

    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(10),
            TARGET: basic_target(ollama_server.url),
        }
    )
    finish = ArtifactWriter.finish
    calls = []

    def full_disk(self: ArtifactWriter) -> tuple[str, int]:
        calls.append(1)
        if len(calls) == 2:  # the source's artifact is written, the generate node's is not
            raise OSError(
                28, "Error writing bytes to file. Detail: [errno 28] No space left on device"
            )
        return finish(self)

    monkeypatch.setattr(ArtifactWriter, "finish", full_disk)
    res = project.build(TARGET, expect=4)
    assert "Traceback" not in res.stderr
    assert (
        f"cannot write to {project.root / '.fdbuild' / 'objects'}: no space left on device"
        in res.stderr
    )
    assert not (project.root / "fdbuild.lock").exists()
    monkeypatch.setattr(ArtifactWriter, "finish", finish)
    asked = ollama_server.generation_count
    assert project.build(TARGET, "--json").json()["teacher_calls"] == 0
    assert ollama_server.generation_count == asked == 20


def test_a_failed_lock_write_is_one_message(
    project: ProjectDir, ollama_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fdbuild.execute.build

    project.gen(
        {
            "targets/data/questions.jsonl": questions_jsonl(3),
            TARGET: basic_target(ollama_server.url),
        }
    )

    def full_disk(*args: Any) -> None:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(fdbuild.execute.build, "dump_lock", full_disk)
    res = project.build(TARGET, expect=4)
    assert "Traceback" not in res.stderr
    assert f"cannot write to {project.root}: disk quota exceeded" in res.stderr
