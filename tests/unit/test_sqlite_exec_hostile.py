"""sqlite_exec against hostile candidate SQL: NUL bytes, invalid text, memory bombs.

Each is a recorded verdict (``exec_error``), the same on every build and cached like any
evaluation, never a ``check_error``; one evaluation's memory stays bounded (measured in
a subprocess, whose address space is capped so the unbounded code fails instead of
taking the machine's memory)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from fdbuild.checks.sqlheap import HEAP, _load
from fdbuild.checks.sqlite_exec import SqliteExecCheck
from fdbuild.checks.sqlsafe import ExecError, SafeConnection, screen
from tests.support.project import ProjectDir

REPO = Path(__file__).resolve().parents[2]


def make_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x');")
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "t.db")


def new_check(db: Path, **params: Any) -> SqliteExecCheck:
    return SqliteExecCheck(SqliteExecCheck.Params(db=db.name, **params), base_dir=db.parent)


def heap_limit_now() -> int:
    fns = _load()
    assert fns is not None
    return fns[0](-1)


NUL_SQL = [
    "SELECT 1\x00; SELECT 2",  # the case: sqlite3.complete_statement raised ValueError
    "SELECT '\x00';",
    "SELECT a FROM t WHERE b = 'x\x00'",
    "\x00",
    "SELECT 1 -- \x00",
    "SELECT 1;\x00",
]


@pytest.mark.parametrize("sql", NUL_SQL)
def test_nul_byte_is_a_verdict_the_same_every_time(db: Path, sql: str) -> None:
    outcomes = []
    for _ in range(2):  # a fresh check each time: what a second build would compute
        check = new_check(db, gold=None)
        outcomes.append(check.evaluate({"sql": sql}))
        check.close()
    assert outcomes[0] == outcomes[1]
    assert outcomes[0]["exec_pass"] is False
    assert outcomes[0]["exec_error"] == "nul_byte"
    assert "NUL character at offset" in outcomes[0]["exec_detail"]


def test_nul_byte_in_gold_is_a_gold_error(db: Path) -> None:
    check = new_check(db)
    out = check.evaluate({"sql": "SELECT 1", "gold_sql": "SELECT 1\x00;"})
    assert out["exec_pass"] is True and out["gold_match"] is None
    assert out["gold_error"].startswith("nul_byte: ")


def test_lone_surrogate_is_invalid_text(db: Path) -> None:
    out = new_check(db, gold=None).evaluate({"sql": "SELECT '\ud800'"})
    assert out["exec_error"] == "invalid_text" and out["exec_pass"] is False


def test_screen_reports_nul_before_anything_else() -> None:
    _, refusal = screen("DROP TABLE t;\x00")
    assert refusal is not None and refusal.error is ExecError.NUL_BYTE


def test_result_size_cap(db: Path) -> None:
    sql = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 40) "
        "SELECT zeroblob(1000000) FROM c"
    )
    small = new_check(db, gold=None, max_result_mb=8).evaluate({"sql": sql})
    assert small["exec_error"] == "result_too_large"
    assert "larger than 8 MB" in small["exec_detail"]
    assert new_check(db, gold=None, max_result_mb=64).evaluate({"sql": sql})["exec_pass"]


@pytest.mark.skipif(not HEAP.available, reason="this SQLite has no sqlite3_hard_heap_limit64")
def test_heap_limit_is_a_memory_verdict_and_is_restored(db: Path) -> None:
    before = heap_limit_now()
    wide = "SELECT " + ", ".join(["zeroblob(4000000)"] * 6)  # ~24 MB of SQLite heap
    check = new_check(db, gold=None, max_memory_mb=8, max_result_mb=1024)
    first = check.evaluate({"sql": wide})
    assert first["exec_error"] == "memory"
    assert "8 MB of SQLite heap" in first["exec_detail"]
    assert check.evaluate({"sql": wide}) == first
    assert heap_limit_now() == before
    assert check.evaluate({"sql": "SELECT a FROM t"})["exec_pass"]  # the connection is fine
    roomy = new_check(db, gold=None, max_memory_mb=256, max_result_mb=1024)
    assert roomy.evaluate({"sql": wide})["exec_pass"]


@pytest.mark.skipif(not HEAP.available, reason="this SQLite has no sqlite3_hard_heap_limit64")
def test_concurrent_queries_share_and_restore_the_limit(db: Path) -> None:
    before = heap_limit_now()
    seen: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            conn = SafeConnection(db)
            for _ in range(30):
                result = conn.query(
                    "SELECT zeroblob(100000)", timeout_ms=2000, max_rows=10, max_memory=4 << 20
                )
                assert result.ok, result.detail
                seen.append(heap_limit_now())
            conn.close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert heap_limit_now() == before


def test_limits_are_keyed_params(db: Path) -> None:
    dumped = new_check(db).params.model_dump(mode="json")
    assert dumped["max_memory_mb"] == 256 and dumped["max_result_mb"] == 64
    assert SqliteExecCheck.version == "2"


RSS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    cap = 3 << 30  # without the caps the queries below need several GB: fail, don't swap
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from fdbuild.checks.sqlite_exec import SqliteExecCheck
    from fdbuild.checks.sqlheap import _load

    db = Path(sys.argv[1])
    check = SqliteExecCheck(SqliteExecCheck.Params(db=db.name, gold=None), base_dir=db.parent)
    rows = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200) "
    queries = {
        "one_huge_blob": "SELECT zeroblob(500000000)",
        "many_blob_rows": rows + "SELECT zeroblob(16000000) FROM c",
        "wide_row": "SELECT " + ", ".join(["zeroblob(16000000)"] * 40),
    }
    out = {}
    for name, sql in queries.items():
        result = check.evaluate({"sql": sql})
        out[name] = [result["exec_error"], result["exec_detail"]]
    check.close()
    fns = _load()
    out["limit_after"] = None if fns is None else fns[0](-1)
    # peak RSS of this process: VmHWM (ru_maxrss would include the pytest parent's RSS
    # at fork time, which Linux carries across exec)
    status = Path("/proc/self/status")
    hwm = [l for l in status.read_text().splitlines() if l.startswith("VmHWM:")] if status.exists() else []
    peak_kb = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["maxrss_mb"] = peak_kb / 1024
    print(json.dumps(out))
    """
)


@pytest.mark.timeout(120)
def test_zeroblob_bombs_stay_bounded_in_memory(db: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(db)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    print("zeroblob bombs:", out)
    assert out["one_huge_blob"][0] == "runtime_error"  # SQLite's 16 MiB value limit
    assert out["many_blob_rows"][0] == "result_too_large"
    if HEAP.available:
        assert out["wide_row"][0] == "memory"
        assert out["limit_after"] == 0
        assert out["maxrss_mb"] < 512  # 256 MB of SQLite heap + Python; it was 832 MB+
    else:  # pragma: no cover - SQLite < 3.31 or no exported symbol
        assert out["wide_row"][0] in ("memory", "result_too_large")


def test_nul_verdict_is_cached_like_any_evaluation(project: ProjectDir) -> None:
    make_db(project.root / "data.db")
    rows = [{"q": "a", "sql": "SELECT 1\x00; SELECT 2"}, {"q": "b", "sql": "SELECT a FROM t"}]
    project.gen(
        {
            "data/rows.jsonl": "".join(json.dumps(r) + "\n" for r in rows),
            "targets/t.yaml": textwrap.dedent(
                """\
                fdbuild: 1
                name: t
                nodes:
                  src: {kind: source, path: ../data/rows.jsonl, id: q}
                  checked:
                    kind: gate
                    input: src
                    check: sqlite_exec
                    params: {db: ../data.db, gold: null}
                    keep: {exec_pass: true}
                  out: {kind: export, input: checked, format: jsonl, path: ../out/t.jsonl}
                """
            ),
        }
    )
    first = project.build("targets/t.yaml", "--json").json()
    assert first["failed"] == 0 and first["nodes"]["checked"]["computed"] == 2
    exported = [json.loads(line) for line in project.read("out/t.jsonl").splitlines()]
    assert [r["exec_error"] for r in exported] == ["nul_byte", None]
    # a new keep rule re-runs the gate node, but each row's evaluation comes from the cache
    second = project.build("targets/t.yaml", "--json", "--set", "nodes.checked.keep={}").json()
    checked = second["nodes"]["checked"]
    assert second["failed"] == 0 and checked["computed"] == 0 and checked["cached"] == 2
    again = [json.loads(line) for line in project.read("out/t.jsonl").splitlines()]
    assert [r["exec_error"] for r in again] == ["nul_byte", None]
