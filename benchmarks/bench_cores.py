"""Benchmark "cores" of issue 11: a CPU-heavy gate on one core, on two, and on Ray.

A SQLite database whose table is sized at the start so that one full scan costs
``--row-ms`` / 2 (default 10 ms) on this machine (the fastest of 7 timed scans, so other
work on the machine does not shrink the table), and a source of ``--rows`` (20,000)
rows, each with a candidate and a gold query that both scan it (distinct per row, so
no evaluation is a cache hit of another's): one ``sqlite_exec`` evaluation costs about
``--row-ms`` (20 ms) of CPU. The target ``source -> gate (sqlite_exec) -> select ->
jsonl export`` is built cold by the real CLI:

* **jobs**: ``--jobs 1`` against ``--jobs 2`` (issue 11, item 3: gate evaluations in a
  process pool sized to the cores), wall time and speed-up; at 20k rows x 20 ms that is
  ~400 s at ``--jobs 1``;
* **ray**: the Ray executor's overhead per row against the local executor, at
  ``--ray-rows`` (20,000) rows of a *light* gate (a query that costs ~nothing, so what is
  measured is the executor, not SQLite), two rounds, each with a 10-row build of each
  executor: per row, ((Ray at N - Ray at 10) - (local at N - local at 10)) / (N - 10),
  so Ray's start-up (Ray at 10 - local at 10, reported apart) falls out; the same for
  the driver's CPU. Without ``--ray-address`` each build starts a local Ray of its own
  (or joins ``$RAY_ADDRESS``); with it, it joins that cluster. With ``--ray-heavy`` also
  the heavy gate under Ray.

CPU is the driver's (user + system from ``wait4``): the ``--jobs`` workers and Ray's
processes are not all its reaped children, so their CPU is not in it.

Every pair of builds is checked to export byte-identical files (same rows, same order,
same verdicts). Options the checkout does not have yet (``--jobs``, ``--executor``) are
reported as not available, and the build without them is measured as the baseline.

    python benchmarks/bench_cores.py --quick            # 1,000 rows: ~1 min
    python benchmarks/bench_cores.py                    # 20k rows: ~12 min + Ray
    python benchmarks/bench_cores.py --ray-address 127.0.0.1:6379
    python benchmarks/bench_cores.py --no-jobs --ray-address local   # a new local Ray per build
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, WORK, load, machine, table  # noqa: E402
from _scale import env, has_option, new_project, run_build, use_code  # noqa: E402

QUERY = "SELECT count(*), sum(y) FROM t WHERE (x * {a}) % 1009 = {b}"


def make_db(path: Path, query_ms: float) -> dict[str, Any]:
    """A table sized so one scan costs ``query_ms`` here (measured, then scaled)."""
    path.unlink(missing_ok=True)

    def fill(con: sqlite3.Connection, n: int) -> None:
        con.execute("DROP TABLE IF EXISTS t")
        con.execute("CREATE TABLE t (x INTEGER, y INTEGER)")
        con.execute(
            "INSERT INTO t SELECT v, v * 7 % 1000 FROM (WITH RECURSIVE c(v) AS "
            f"(SELECT 1 UNION ALL SELECT v + 1 FROM c WHERE v < {n}) SELECT v FROM c)"
        )
        con.commit()

    def cost(con: sqlite3.Connection) -> float:
        times = []
        for i in range(7):
            t0 = time.perf_counter()
            con.execute(QUERY.format(a=3 + i, b=i)).fetchall()
            times.append(time.perf_counter() - t0)
        return min(times) * 1000  # the least disturbed by other work on the machine

    con = sqlite3.connect(path)
    n = 100_000
    fill(con, n)
    for _ in range(2):  # scale, then correct once (a scan is linear in the rows)
        n = max(1000, int(n * query_ms / cost(con)))
        fill(con, n)
    measured = cost(con)
    con.execute("VACUUM")
    con.close()
    return {"table_rows": n, "query_ms": measured, "db_bytes": path.stat().st_size}


def write_rows(path: Path, rows: int, *, light: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(rows):
            a, b = 3 + i % 9973, i % 1009
            if light:
                gold, cand = (
                    f"SELECT {i}, 'gold'",
                    f"SELECT {i}, 'gold'" if i % 5 else f"SELECT {i}",
                )
            else:
                gold = QUERY.format(a=a, b=b)
                # a different text with the same result for 4 rows in 5, a wrong one else
                cand = (
                    gold.replace("= ", "= 0 + ") if i % 5 else QUERY.format(a=a, b=(b + 1) % 1009)
                )
            fh.write(json.dumps({"task_id": f"r{i:07d}", "sql": cand, "gold_sql": gold}) + "\n")


TARGET = """fdbuild: 1
name: cores
nodes:
  rows:
    kind: source
    path: data/rows.jsonl
    id: task_id
  executed:
    kind: gate
    input: rows
    check: sqlite_exec
    params: {db: data/bench.db, sql: sql, gold: gold_sql, timeout_ms: 60000}
    keep: {gold_match: true}
  kept:
    kind: select
    input: executed
  export:
    kind: export
    input: kept
    format: jsonl
    path: out/rows.jsonl
"""


def make(name: str, rows: int, db: Path, *, light: bool) -> Path:
    directory = new_project(WORK / name)
    write_rows(directory / "data" / "rows.jsonl", rows, light=light)
    (directory / "data" / "bench.db").write_bytes(db.read_bytes())
    path = directory / "cores.yaml"
    path.write_text(TARGET, encoding="utf-8")
    return path


def build(name: str, rows: int, db: Path, *extra: str, light: bool = False) -> dict[str, Any]:
    target = make(name, rows, db, light=light)
    run = run_build(target, *extra, environ=env(**RAY_ENV))
    if run.code != 0:
        raise SystemExit(f"{name} {' '.join(extra)}: exit {run.code}: {run.stderr[-2500:]}")
    export = target.parent / "out" / "rows.jsonl"
    gate = run.record.get("nodes", {}).get("executed", {}).get("stats", {})
    return {
        "args": list(extra),
        "wall_s": run.wall_s,
        "cpu_s": run.cpu_s,
        "gate_wall_s": gate.get("wall_s"),
        "computed": gate.get("computed"),
        "export_sha256": hashlib.sha256(export.read_bytes()).hexdigest(),
        "export_rows": sum(1 for _ in open(export, "rb")),
    }


def say(label: str, r: dict[str, Any], rows: int) -> None:
    print(
        f"{label}: {r['wall_s']:.2f} s wall ({r['wall_s'] / rows * 1000:.3f} ms/row), gate node "
        f"{r['gate_wall_s']} s, driver CPU {r['cpu_s']:.1f} s, "
        f"{r['export_rows']} rows exported",
        flush=True,
    )


RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
"""Ray keeps 127.0.0.1 as given (it otherwise swaps in the machine's network address),
and sends no usage statistics; set for the Ray head and every build (as
tests/support/ray_cluster.py and .ci/run do)."""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=20_000, help="rows of the heavy gate")
    p.add_argument("--row-ms", type=float, default=20.0, help="CPU per evaluation (2 queries)")
    p.add_argument("--ray-rows", type=int, default=20_000, help="rows of the light gate")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster (else local)")
    p.add_argument("--ray-heavy", action="store_true", help="also the heavy gate under Ray")
    p.add_argument("--no-jobs", action="store_true", help="skip the --jobs comparison")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray comparison")
    p.add_argument("--quick", action="store_true", help="1,000 rows of each")
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument("--rev", default="HEAD", help="fdbuild as committed at REV, or `worktree`")
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.ray_rows = 1000, 1000
    json_out = args.json_out or WORK / f"cores-results{'-quick' if args.quick else ''}.json"
    WORK.mkdir(parents=True, exist_ok=True)
    code = use_code(args.rev)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(f"fdbuild cores benchmark, {started}\n{machine()}\n{load()} at the start")
    print(f"measured: fdbuild at {code}")
    db = WORK / "cores-bench.db"
    info = make_db(db, args.row_ms / 2)
    print(
        f"database: {info['table_rows']} rows, {info['db_bytes'] / 1e6:.1f} MB, one scan "
        f"{info['query_ms']:.1f} ms (x2 per evaluation)\n",
        flush=True,
    )
    jobs, executor = has_option("--jobs"), has_option("--executor")
    out: dict[str, Any] = {"db": info, "jobs_available": jobs, "ray_available": executor}

    if not args.no_jobs:
        if jobs:
            one = build("cores-jobs1", args.rows, db, "--jobs", "1")
            say("--jobs 1", one, args.rows)
            two = build("cores-jobs2", args.rows, db, "--jobs", "2")
            say("--jobs 2", two, args.rows)
            out["jobs"] = {
                "1": one,
                "2": two,
                "speedup": one["wall_s"] / two["wall_s"],
                "identical": one["export_sha256"] == two["export_sha256"],
            }
            print(
                f"--jobs 2 against --jobs 1: {out['jobs']['speedup']:.2f}x faster; exports "
                f"{'identical' if out['jobs']['identical'] else 'DIFFER'}\n",
                flush=True,
            )
        else:
            one = build("cores-jobs1", args.rows, db)
            say("no --jobs in this checkout, the build as it is", one, args.rows)
            out["jobs"] = {"baseline": one}
            print("--jobs: not available in this checkout\n", flush=True)

    if not args.no_ray:
        if executor:
            address = args.ray_address
            ray = ["--executor", "ray", *(["--ray-address", address] if address else [])]
            rounds = []
            for rnd in (1, 2):
                # a 10-row build of each: what starting (or joining) Ray costs a build
                local10 = build(f"cores-local-tiny-{rnd}", 10, db, light=True)
                ray10 = build(f"cores-ray-tiny-{rnd}", 10, db, *ray, light=True)
                local = build(f"cores-local-light-{rnd}", args.ray_rows, db, light=True)
                say(f"round {rnd}, local, light gate", local, args.ray_rows)
                rayr = build(f"cores-ray-light-{rnd}", args.ray_rows, db, *ray, light=True)
                say(f"round {rnd}, ray, light gate", rayr, args.ray_rows)
                n = args.ray_rows - 10
                rounds.append(
                    {
                        "local_10": local10,
                        "ray_10": ray10,
                        "local": local,
                        "ray": rayr,
                        "ray_start_s": ray10["wall_s"] - local10["wall_s"],
                        "overhead_ms_per_row": (
                            (rayr["wall_s"] - ray10["wall_s"])
                            - (local["wall_s"] - local10["wall_s"])
                        )
                        / n
                        * 1e3,
                        "whole_ms_per_row": (rayr["wall_s"] - local["wall_s"])
                        / args.ray_rows
                        * 1e3,
                        "driver_cpu_ms_per_row": (
                            (rayr["cpu_s"] - ray10["cpu_s"]) - (local["cpu_s"] - local10["cpu_s"])
                        )
                        / n
                        * 1e3,
                        "identical": local["export_sha256"] == rayr["export_sha256"],
                    }
                )
                print(
                    f"round {rnd}: Ray's start-up in a build (10 rows, ray - local) "
                    f"{rounds[-1]['ray_start_s']:.2f} s; per row beyond it "
                    f"{rounds[-1]['overhead_ms_per_row']:.3f} ms",
                    flush=True,
                )
            out["ray"] = {"address": address, "rounds": rounds}
            print(
                f"Ray executor against the local one, {args.ray_rows} rows of a light gate: "
                "overhead per row (Ray's start-up removed) "
                + ", ".join(f"{r['overhead_ms_per_row']:.3f}" for r in rounds)
                + " ms; start-up "
                + ", ".join(f"{r['ray_start_s']:.2f}" for r in rounds)
                + " s; whole build per row "
                + ", ".join(f"{r['whole_ms_per_row']:.3f}" for r in rounds)
                + " ms; the driver's CPU per row "
                + ", ".join(f"{r['driver_cpu_ms_per_row']:.3f}" for r in rounds)
                + " ms; exports "
                + ("identical" if all(r["identical"] for r in rounds) else "DIFFER"),
                flush=True,
            )
            if args.ray_heavy:
                heavy = build("cores-ray-heavy", args.rows, db, *ray)
                say("ray, heavy gate", heavy, args.rows)
                out["ray"]["heavy"] = heavy
                base = out.get("jobs", {}).get("2") or out.get("jobs", {}).get("baseline")
                if base:
                    out["ray"]["heavy_vs_local"] = heavy["wall_s"] / base["wall_s"]
                    print(
                        f"heavy gate, ray against local {' '.join(base['args']) or '(default)'}: "
                        f"{out['ray']['heavy_vs_local']:.2f}x the wall time; exports "
                        f"{'identical' if heavy['export_sha256'] == base['export_sha256'] else 'DIFFER'}"
                    )
        else:
            print("--executor ray: not available in this checkout")
    if out.get("jobs", {}).get("1") or out.get("ray"):
        rows = []
        for label, r in (
            [("--jobs 1", out["jobs"].get("1")), ("--jobs 2", out["jobs"].get("2"))]
            if "jobs" in out
            else []
        ) + [
            (f"{side} light {i + 1}", x[side])
            for i, x in enumerate(out.get("ray", {}).get("rounds", []))
            for side in ("local", "ray")
        ]:
            if r:
                rows.append(
                    [
                        label,
                        f"{r['wall_s']:.2f}",
                        f"{r['cpu_s']:.1f}",
                        r["export_rows"],
                        r["export_sha256"][:12],
                    ]
                )
        print()
        print(table(["build", "wall s", "driver CPU s", "rows out", "export sha256"], rows))
    print(f"{load()} at the end")
    payload = {
        "date": started,
        "machine": machine(),
        "code": code,
        "load_end": load(),
        "config": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
            if k != "json_out"
        },
        **out,
    }
    json_out.write_text(json.dumps(payload, indent=2))
    print(f"results: {json_out.relative_to(REPO) if json_out.is_relative_to(REPO) else json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
