"""Shared pieces of the benchmarks: paths, the target file, the source rows, the test
server as a subprocess, an instant in-process teacher, and small timing helpers.

Not a test module: the benchmarks are scripts (``python benchmarks/bench_*.py``), run
from anywhere; they put the repository root on ``sys.path`` so that the Ollama-protocol
test server (``tests/support/ollama_server.py``) is importable.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / ".work"  # gitignored
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MODEL = "qwen2.5-coder:7b"
# The digest the test server reports for MODEL; the instant teacher claims the same one,
# so a cache filled in-process is a cache hit for the real CLI talking HTTP.
DIGEST = hashlib.sha256(b"fdbuild-benchmark-weights").hexdigest()
SERVER_VERSION = "0.32.15"


def child_env(**extra: str) -> dict[str, str]:
    """The environment of every process a benchmark times.

    Byte-code caching as in a normal install: a ``PYTHONDONTWRITEBYTECODE`` inherited
    from a sandbox would make every run re-compile fdbuild's own modules (~50 ms each
    start), so it is dropped and the ``.pyc`` files go to ``benchmarks/.work/pycache``
    (nothing is written into the source tree). Warm-up runs fill that cache.
    """
    env = {**os.environ, **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env["PYTHONPYCACHEPREFIX"] = str(WORK / "pycache")
    return env


def fdbuild_exe() -> str:
    """The ``fdbuild`` console script of the interpreter running the benchmark."""
    here = Path(sys.executable).parent / "fdbuild"
    if here.exists():
        return str(here)
    found = shutil.which("fdbuild")
    if not found:
        raise SystemExit("cannot find the `fdbuild` console script; `pip install -e .` first")
    return found


# ----------------------------------------------------------------------------- project


def target_yaml(*, concurrency: int, n: int = 1, host: str | None = None) -> str:
    """source -> generate (n) -> rules gate -> select -> jsonl export (the shape of the
    acceptance tests' ``basic_target``). ``host`` unset: ``$OLLAMA_HOST`` decides, so the
    same file (same keys) serves the in-process first build and the CLI rebuild."""
    host_line = f"    host: {host}\n" if host else ""
    return f"""fdbuild: 1
name: bench
teachers:
  main:
    model: {MODEL}
{host_line}    concurrency: {concurrency}
    retries: 2
    timeout_s: 60
nodes:
  questions:
    kind: source
    path: data/questions.jsonl
    id: task_id
  answers:
    kind: generate
    input: questions
    teacher: main
    system: You write SQLite SQL. Return SQL only.
    template: "Question: {{question}}\\nSQL:"
    decode: {{temperature: 0.2, top_p: 0.95, seed: 7, num_predict: 128}}
    n: {n}
  checked:
    kind: gate
    input: answers
    check: rules
    params: {{min_chars: 12, max_chars: 2000}}
    keep: {{rule_reason: ok}}
  kept:
    kind: select
    input: checked
  export:
    kind: export
    input: kept
    format: jsonl
    path: out/answers.jsonl
"""


_COLUMNS = ("name", "capital", "population", "area", "continent", "currency", "language")


def write_source(path: Path, rows: int) -> int:
    """Deterministic WikiSQL-like question rows (~150 bytes each). Returns bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dumps = json.dumps
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        buf = []
        for i in range(rows):
            col = _COLUMNS[i % 7]
            buf.append(
                dumps(
                    {
                        "task_id": f"q{i:07d}",
                        "question": f"What is the {col} of the country listed in row {i} of table t{i % 997}?",
                        "gold_sql": f"SELECT {col} FROM t{i % 997} WHERE rowid = {i}",
                    }
                )
            )
            if len(buf) >= 10_000:
                fh.write("\n".join(buf) + "\n")
                buf = []
        if buf:
            fh.write("\n".join(buf) + "\n")
    return path.stat().st_size


def make_project(directory: Path, rows: int, *, concurrency: int, host: str | None = None) -> Path:
    """A fresh project folder with the source and the target file; returns the target."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    write_source(directory / "data" / "questions.jsonl", rows)
    target = directory / "bench.yaml"
    target.write_text(target_yaml(concurrency=concurrency, host=host), encoding="utf-8")
    return target


# ----------------------------------------------------------------------------- teachers


def instant_provider_factory() -> Callable[[Any], Any]:
    """A ``make_provider`` replacement: an in-process teacher with no network and no delay.

    ``resolve()`` returns exactly the identity ``OllamaProvider.resolve()`` returns against
    the test server started with ``--model MODEL=DIGEST`` (provider ``ollama``, the
    normalised tag, the bare lower-case digest), so the row cache it fills is what the real
    CLI finds. ``generate()`` is a pure function of the prompt; about one reply in ten is
    too short for the rules gate, so ``select`` really drops rows.
    """
    import xxhash

    from fdbuild.providers import Provider, TeacherIdentity, TeacherResponse
    from fdbuild.providers.ollama import normalize_tag

    class InstantProvider(Provider):
        name = "ollama"

        def __init__(self, spec: Any) -> None:
            self.model = normalize_tag(spec.model)

        async def resolve(self) -> TeacherIdentity:
            return TeacherIdentity(
                provider="ollama", model=self.model, digest=DIGEST, server_version=SERVER_VERSION
            )

        async def generate(self, request: Any) -> TeacherResponse:
            h = xxhash.xxh3_64_intdigest(request.messages[-1]["content"].encode())
            text = "SELECT 1" if h % 10 == 0 else f"SELECT c{h % 97} FROM t WHERE id = {h % 100003}"
            return TeacherResponse(
                text=text,
                done_reason="stop",
                prompt_tokens=24,
                completion_tokens=len(text) // 4,
                total_duration_ns=1_000_000,
                eval_duration_ns=500_000,
            )

    def make(spec: Any) -> Any:
        if spec.provider != "ollama":
            raise ValueError(f"benchmark teacher must be ollama, got {spec.provider!r}")
        return InstantProvider(spec)

    return make


class ServerProcess:
    """``python -m tests.support.ollama_server`` in its own process (its own GIL, as a
    real Ollama would be), steered through its ``/_fake/*`` control API."""

    def __init__(
        self, *, latency: float = 0.0, jitter: float = 0.0, seed: int | None = None
    ) -> None:
        cmd = [
            sys.executable,
            "-m",
            "tests.support.ollama_server",
            "--port",
            "0",
            "--latency",
            str(latency),
            "--jitter",
            str(jitter),
            "--model",
            f"{MODEL}={DIGEST}",
            "--version",
            SERVER_VERSION,
        ]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.stop()
            raise SystemExit(f"test server did not start (got {self.url!r})")

    def _call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method="POST" if data is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        return self._call("/_fake/stats")

    def reset(self) -> dict[str, Any]:
        return self._call("/_fake/reset", {})

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ----------------------------------------------------------------------------- timing


GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


@dataclass
class Timed:
    wall_s: float
    code: int
    max_rss_kib: int
    cpu_s: float
    stdout: str
    stderr: str


def run_timed(
    cmd: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None, out: Path | None = None
) -> Timed:
    """Run a command: wall seconds (fork to reap), exit code, peak RSS, CPU seconds
    (user + system, the process and what it waited for), stdout, stderr.

    Peak RSS comes from GNU time when installed, else from ``wait4``. (Linux carries the
    parent's high-water mark across fork + exec into the child's ``ru_maxrss``, so
    ``wait4`` from a big parent over-reports; callers keep this process small, and GNU
    time measures from a small parent of its own.)
    """
    out = out or (WORK / "last-run")
    out.mkdir(parents=True, exist_ok=True)
    so, se, rss_file = out / "stdout", out / "stderr", out / "maxrss"
    argv = list(cmd)
    if GNU_TIME:
        argv = [GNU_TIME, "-f", "%M", "-o", str(rss_file)] + argv
    with open(so, "wb") as fo, open(se, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=fo, stderr=fe)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss = usage.ru_maxrss
    if GNU_TIME:
        lines = [ln for ln in rss_file.read_text().split() if ln.isdigit()]
        rss = int(lines[-1]) if lines else rss
    return Timed(
        wall, proc.returncode, rss, usage.ru_utime + usage.ru_stime, so.read_text(), se.read_text()
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; "
        f"{platform.system()} {platform.release()}; fdbuild {revision()}"
    )


def revision() -> str:
    """The checkout measured: commit, and whether the working tree had changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "fdbuild"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return f"commit {head}" + (" + uncommitted changes in fdbuild/" if dirty else "")


def load() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews wall times."""
    try:
        return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for j, r in enumerate(cells):
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
