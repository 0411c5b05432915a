"""Shared pieces of the scale benchmarks (issue 11): test servers with exact request
counts, project folders, the real CLI as a timed subprocess, the bare ``ollama`` client
as a timed subprocess, and what the checkout's CLI offers (``hosts:``, ``--jobs``,
``--executor``), so one script measures whichever of them has landed and says which
have not.

Every build here is ``fdbuild build TARGET --json`` in a child process, cwd the project
folder (marked with its own ``.fdbuild/``, so the repository's own lock is never taken
for the project), timed fork to reap, its CPU (user + system, children included) from
``wait4``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    DIGEST,
    MODEL,
    REPO,
    SERVER_VERSION,
    WORK,
    child_env,
    fdbuild_exe,
    write_source,
)

BENCH = Path(__file__).resolve().parent
_CODE: dict[str, str] = {}


def use_code(rev: str) -> str:
    """Measure fdbuild as committed at ``rev`` (default ``HEAD``), not the working tree.

    Several people edit the tree while these benchmarks run, so a half-made change can
    break or skew a run. ``git archive REV fdbuild`` is unpacked to
    ``benchmarks/.work/code-<commit>/`` (nothing in the tree is touched) and every fdbuild
    the benchmark starts imports it (``PYTHONPATH``, ahead of the editable install's
    finder). ``rev`` ``worktree``: the working tree as it is. Returns what is measured.
    """
    if rev == "worktree":
        _CODE.clear()
        return "the working tree"
    sha = subprocess.run(
        ["git", "rev-parse", "--short=10", rev],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    target = WORK / f"code-{sha}"
    if not (target / "fdbuild" / "__init__.py").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(
            ["git", "archive", sha, "fdbuild"], cwd=REPO, stdout=subprocess.PIPE
        )
        subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout, check=True)
        archive.wait()
    _CODE["PYTHONPATH"] = str(target)
    subject = subprocess.run(
        ["git", "log", "-1", "--format=%h %cd %s", "--date=format:%H:%M", sha],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"commit {subject[:110]}"


def env(**extra: str) -> dict[str, str]:
    """The environment of an fdbuild child: ``child_env`` plus the code chosen by
    ``use_code``."""
    return child_env(**_CODE, **extra)


class Server:
    """``benchmarks/_server.py`` in its own process: the Ollama-protocol test server,
    counting every generation request it receives in ``count_file`` (exact after a
    ``kill -9``), optionally replying as a judge."""

    def __init__(
        self,
        name: str,
        *,
        latency: float = 0.0,
        jitter: float = 0.0,
        seed: int | None = None,
        judge: bool = False,
    ) -> None:
        WORK.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.count_file = WORK / f"count-{name}-{os.getpid()}"
        cmd = [
            sys.executable,
            str(BENCH / "_server.py"),
            "--latency",
            str(latency),
            "--jitter",
            str(jitter),
            "--model",
            f"{MODEL}={DIGEST}",
            "--version",
            SERVER_VERSION,
            "--count-file",
            str(self.count_file),
        ]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        if judge:
            cmd.append("--judge")
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.stop()
            raise SystemExit(f"test server {name} did not start (got {self.url!r})")

    @property
    def requests(self) -> int:
        """Generation requests received so far (the count file's size)."""
        return _size(self.count_file)

    @property
    def answered(self) -> int:
        """Generation requests whose reply was sent (or failed) so far."""
        return _size(self.done_file)

    @property
    def done_file(self) -> Path:
        return self.count_file.with_name(self.count_file.name + ".done")

    def stats(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(self.url + "/_fake/stats", timeout=5) as resp:
            return json.loads(resp.read())

    def zero(self) -> None:
        """Start counting again from 0 (between phases of one run)."""
        for path in (self.count_file, self.done_file):
            with open(path, "r+b") as fh:
                fh.truncate(0)
        import urllib.request

        req = urllib.request.Request(
            self.url + "/_fake/reset", data=b"{}", headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(req, timeout=5).read()

    def kill(self) -> None:
        """``kill -9``: connections drop with no reply, as a host that dies would."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.count_file.unlink(missing_ok=True)
        self.done_file.unlink(missing_ok=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# ----------------------------------------------------------------------------- features


def build_help() -> str:
    return subprocess.run(
        [fdbuild_exe(), "build", "--help"], capture_output=True, text=True, env=env(), cwd=WORK
    ).stdout


def has_option(option: str) -> bool:
    """Whether ``fdbuild build`` of this checkout takes ``option`` (``--jobs``, ...)."""
    return option in build_help()


# ----------------------------------------------------------------------------- projects


def teacher_yaml(
    name: str, urls: Sequence[str], *, concurrency: int, timeout_s: float = 60, retries: int = 2
) -> str:
    """One teacher: ``host:`` for one URL, ``hosts:`` (a pool, issue 11) for several."""
    where = (
        f"    host: {urls[0]}\n"
        if len(urls) == 1
        else "    hosts:\n" + "".join(f"      - {u}\n" for u in urls)
    )
    return (
        f"  {name}:\n    model: {MODEL}\n{where}    concurrency: {concurrency}\n"
        f"    retries: {retries}\n    timeout_s: {timeout_s}\n"
    )


def new_project(directory: Path) -> Path:
    """An empty project folder, marked as a project (its own ``.fdbuild/``)."""
    import shutil

    if directory.exists():
        shutil.rmtree(directory)
    (directory / ".fdbuild").mkdir(parents=True)
    return directory


def write_questions(directory: Path, rows: int) -> None:
    write_source(directory / "data" / "questions.jsonl", rows)


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    code: int
    summary: dict[str, Any]
    record: dict[str, Any]
    stderr: str


def run_build(target: Path, *extra: str, environ: dict[str, str] | None = None) -> Run:
    """``fdbuild build TARGET --json -q [extra]`` in the target's folder, timed."""
    project = target.parent
    cmd = [fdbuild_exe(), "build", target.name, "--json", "-q", *extra]
    out = project / ".bench-out"
    out.mkdir(exist_ok=True)
    with open(out / "stdout", "wb") as fo, open(out / "stderr", "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=project, env=environ or env(), stdout=fo, stderr=fe)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    stdout = (out / "stdout").read_text()
    stderr = (out / "stderr").read_text()
    try:
        summary = json.loads(stdout) if stdout.strip() else {}
    except json.JSONDecodeError:
        summary = {}
    record: dict[str, Any] = {}
    run_id = summary.get("run_id")
    if run_id:
        path = project / ".fdbuild" / "runs" / f"{run_id}.json"
        if path.exists():
            record = json.loads(path.read_text())
    return Run(wall, usage.ru_utime + usage.ru_stime, code, summary, record, stderr)


def count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)


def bare_client(
    urls: Sequence[str], *, requests: int, concurrency: int, offset: int = 0
) -> dict[str, Any]:
    """``benchmarks/_bare_client.py`` in a child process: the official
    ``ollama.AsyncClient`` alone (one per host), ``concurrency`` workers per host, no
    engine. Its wall time and CPU (``wait4``), and its own in-loop figures."""
    cmd = [
        sys.executable,
        str(BENCH / "_bare_client.py"),
        "--requests",
        str(requests),
        "--concurrency",
        str(concurrency),
        "--offset",
        str(offset),
        *urls,
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=child_env(), stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    assert proc.stdout is not None
    inner = json.loads(proc.stdout.read())
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise SystemExit(f"bare client failed (exit {code})")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, **inner}


def fmt_ratio(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"
