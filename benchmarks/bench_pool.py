"""Benchmark "pool" of issue 11: a teacher served by three hosts.

Three Ollama-protocol test servers (``benchmarks/_server.py``, each its own process),
each allowed 4 requests in flight, latency 100 ms +/- 50 % (uniform in [50, 150] ms,
seeded per round and server). A target ``source -> generate (n: 1) -> jsonl export`` of
2,400 rows names them as one teacher (``hosts:``, ``concurrency: 4``) and is built cold
by the real CLI. 3 x 4 in flight at a mean 0.1 s allow at most 120 requests/s; the
target is >= 0.93 of that over the whole build (fork to reap of ``fdbuild build``).

Same rounds, same servers' seeds: the bare ``ollama`` client (one per host, 4 workers
each, no engine): the most this client reaches on these servers.

Then the failover run: the same build with fresh servers, one of them killed (``kill -9``)
once a third of the generations were received. Checked: exit 0, every row in the
export, and requests sent (counted at the servers, exact after the kill) <= generations
+ what the killed server had in flight when it died.

Without ``hosts:`` support in the checkout (issue 11, item 1) the pool runs are
reported as not available and one host (``host:``, concurrency 4, limit 40/s) is
measured instead, so the script still says what the engine does against a host.

    python benchmarks/bench_pool.py                 # 2,400 generations, 3 rounds + failover
    python benchmarks/bench_pool.py --quick         # 600 generations, 1 round + failover
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, WORK, fdbuild_exe, load, machine, median, table  # noqa: E402
from _scale import (  # noqa: E402
    Server,
    bare_client,
    env,
    new_project,
    run_build,
    teacher_yaml,
    use_code,
    write_questions,
)

TARGET_FRACTION = 0.93


def target(urls: list[str], concurrency: int) -> str:
    return (
        "fdbuild: 1\nname: pool\nteachers:\n"
        + teacher_yaml("main", urls, concurrency=concurrency)
        + """nodes:
  questions:
    kind: source
    path: data/questions.jsonl
    id: task_id
  answers:
    kind: generate
    input: questions
    teacher: main
    system: You write SQLite SQL. Return SQL only.
    template: "Question: {question}\\nSQL:"
    decode: {temperature: 0.2, top_p: 0.95, seed: 7, num_predict: 128}
  export:
    kind: export
    input: answers
    format: jsonl
    path: out/answers.jsonl
"""
    )


def make(directory: Path, rows: int, urls: list[str], concurrency: int) -> Path:
    new_project(directory)
    write_questions(directory, rows)
    path = directory / "pool.yaml"
    path.write_text(target(urls, concurrency), encoding="utf-8")
    return path


def export_ids(project: Path) -> tuple[int, int]:
    """(lines, distinct task ids) of the export."""
    path = project / "out" / "answers.jsonl"
    if not path.exists():
        return 0, 0
    ids = set()
    lines = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            lines += 1
            row = json.loads(line)
            ids.add(row.get("task_id", row.get("_id")))
    return lines, len(ids)


def host_stats(record: dict[str, Any]) -> Any:
    """Whatever per-host figures the run record carries (issue 11: counts, p50/p95, failures)."""
    node = record.get("nodes", {}).get("answers", {}).get("stats", {})
    for key in ("hosts", "per_host"):
        if key in node:
            return node[key]
    if "hosts" in record:
        return record["hosts"]
    teachers = record.get("teachers", {})
    found = {
        name: t["hosts"] for name, t in teachers.items() if isinstance(t, dict) and "hosts" in t
    }
    return found or None


def _p50(record: dict[str, Any]) -> float | None:
    node = record.get("nodes", {}).get("answers", {}).get("stats", {})
    return node.get("latency_p50_s")


def one_round(rnd: int, args: argparse.Namespace, pool: bool) -> dict[str, Any]:
    servers = [
        Server(f"p{rnd}-{i}", latency=args.latency, jitter=args.jitter, seed=rnd * 10 + i)
        for i in range(args.hosts)
    ]
    try:
        urls = [s.url for s in servers] if pool else [servers[0].url]
        project = WORK / f"pool-{rnd}"
        run = run_build(make(project, args.rows, urls, args.concurrency))
        sent = [s.requests for s in servers]
        stats = [s.stats() for s in servers]
        # the build's fixed cost (start-up, imports, identity of every host, lock, record)
        noop = run_build(project / "pool.yaml")
        for s in servers:
            s.zero()
        bare = bare_client(urls, requests=args.rows, concurrency=args.concurrency, offset=10**6)
    finally:
        for s in servers:
            s.stop()
    if run.code != 0:
        raise SystemExit(f"round {rnd}: build exit {run.code}: {run.stderr[-2000:]}")
    limit = len(urls) * args.concurrency / args.latency
    node = run.record["nodes"]["answers"]["stats"]
    teacher_s = node.get("teacher_wall_s")
    lines, distinct = export_ids(project)
    if distinct != args.rows:
        raise SystemExit(
            f"round {rnd}: exit 0 but the export has {lines} lines, {distinct} distinct ids "
            f"(of {args.rows}) in {project}; {run.summary}; {run.stderr[-1500:]}"
        )
    assert sum(sent) == args.rows, sent
    return {
        "round": rnd,
        "hosts": len(urls),
        "limit_rps": limit,
        "requests": sum(sent),
        "per_host_requests": sent[: len(urls)],
        "max_in_flight": [st["max_in_flight"] for st in stats[: len(urls)]],
        "build_s": run.wall_s,
        "build_cpu_s": run.cpu_s,
        "rps_build": args.rows / run.wall_s,
        "fraction_build": args.rows / run.wall_s / limit,
        "teacher_s": teacher_s,
        "noop_s": noop.wall_s,
        "outside_teacher_s": run.wall_s - teacher_s if teacher_s else None,
        "mean_latency_p50_s": _p50(run.record),
        "fraction_teacher": args.rows / teacher_s / limit if teacher_s else None,
        "bare_rps": args.rows / bare["loop_wall_s"],
        "bare_fraction": args.rows / bare["loop_wall_s"] / limit,
        "vs_bare": bare["loop_wall_s"] / run.wall_s,
        "host_stats": host_stats(run.record),
    }


def failover(args: argparse.Namespace) -> dict[str, Any]:
    """The pool build with the last server killed after a third of the generations."""
    servers = [
        Server(f"f-{i}", latency=args.latency, jitter=args.jitter, seed=900 + i)
        for i in range(args.hosts)
    ]
    victim = servers[-1]
    try:
        project = WORK / "pool-failover"
        make(project, args.rows, [s.url for s in servers], args.concurrency)
        out = project / ".bench-out"
        out.mkdir(exist_ok=True)
        cmd = [fdbuild_exe(), "build", "pool.yaml", "--json", "-q"]
        with open(out / "stdout", "wb") as fo, open(out / "stderr", "wb") as fe:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=project, env=env(), stdout=fo, stderr=fe)
            killed_at = None
            while proc.poll() is None:
                if killed_at is None and sum(s.requests for s in servers) >= args.rows // 3:
                    victim.kill()
                    killed_at = time.perf_counter() - t0
                time.sleep(0.002)
            wall = time.perf_counter() - t0
        code = proc.returncode
        sent = [s.requests for s in servers]
        answered = [s.answered for s in servers]
    finally:
        for s in servers:
            s.stop()
    lines, distinct = export_ids(project)
    in_flight = sent[-1] - answered[-1]
    summary = json.loads((out / "stdout").read_text() or "{}")
    record: dict[str, Any] = {}
    if summary.get("run_id"):
        rec = project / ".fdbuild" / "runs" / f"{summary['run_id']}.json"
        if rec.exists():
            record = json.loads(rec.read_text())
    return {
        "exit_code": code,
        "stderr_tail": (out / "stderr").read_text()[-1500:],
        "wall_s": wall,
        "killed_at_s": killed_at,
        "export_lines": lines,
        "export_distinct_ids": distinct,
        "requests_per_host": sent,
        "answered_per_host": answered,
        "victim_in_flight_at_kill": in_flight,
        "requests_total": sum(sent),
        "bound": args.rows + in_flight,
        "failed": summary.get("failed"),
        "teacher_calls": summary.get("teacher_calls"),
        "host_stats": host_stats(record),
        "ok": code == 0 and distinct == args.rows and sum(sent) <= args.rows + in_flight,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=2400, help="source rows = generations (n: 1)")
    p.add_argument("--hosts", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=4, help="per host")
    p.add_argument("--latency", type=float, default=0.1, help="mean server latency, seconds")
    p.add_argument("--jitter", type=float, default=0.5, help="uniform +/- fraction of the latency")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-failover", action="store_true")
    p.add_argument("--quick", action="store_true", help="600 generations, 1 round")
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument(
        "--rev", default="HEAD", help="fdbuild as committed at REV (default HEAD), or `worktree`"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.repeats = 600, 1
    json_out = args.json_out or WORK / f"pool-results{'-quick' if args.quick else ''}.json"
    WORK.mkdir(parents=True, exist_ok=True)
    code = use_code(args.rev)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(
        f"fdbuild pool benchmark, {started}\n{machine()}\n{load()} at the start\nmeasured: fdbuild at {code}",
        flush=True,
    )

    # Does this checkout take `hosts:`? A build of a 1-row pool target tells.
    with Server("probe-a") as a, Server("probe-b") as b:
        r = run_build(make(WORK / "pool-probe", 1, [a.url, b.url], 1))
    pool = r.code == 0
    if not pool:
        print(
            "`hosts:` is not available in this checkout (a 2-host target: exit "
            f"{r.code}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''}); "
            "measuring one host instead",
            flush=True,
        )
    results = []
    for rnd in range(1, args.repeats + 1):
        res = one_round(rnd, args, pool)
        results.append(res)
        print(
            f"round {rnd}: {res['hosts']} host(s): {res['rps_build']:.1f} req/s over the build = "
            f"{res['fraction_build']:.3f} of {res['limit_rps']:.0f}/s; bare client "
            f"{res['bare_rps']:.1f} req/s ({res['bare_fraction']:.3f}); per host "
            f"{res['per_host_requests']}, max in flight {res['max_in_flight']}",
            flush=True,
        )
    rows = [
        [
            r["round"],
            r["hosts"],
            r["requests"],
            f"{r['build_s']:.2f}",
            f"{r['rps_build']:.1f}",
            f"{r['fraction_build']:.3f}",
            f"{r['fraction_teacher']:.3f}" if r["fraction_teacher"] else "n/a",
            f"{r['outside_teacher_s']:.2f}" if r["outside_teacher_s"] else "n/a",
            f"{r['noop_s']:.2f}",
            f"{r['bare_rps']:.1f}",
            f"{r['bare_fraction']:.3f}",
            f"{r['vs_bare']:.3f}",
            "/".join(map(str, r["per_host_requests"])),
            "/".join(map(str, r["max_in_flight"])),
        ]
        for r in results
    ]
    med = {
        k: median([r[k] for r in results])
        for k in (
            "build_s",
            "rps_build",
            "fraction_build",
            "bare_rps",
            "bare_fraction",
            "vs_bare",
            "noop_s",
        )
    }
    print()
    print(
        table(
            [
                "round",
                "hosts",
                "requests",
                "build s",
                "req/s",
                "of limit",
                "teacher phase",
                "outside it s",
                "no-op s",
                "bare req/s",
                "of limit",
                "vs bare",
                "per host",
                "max in flight",
            ],
            rows,
        )
    )
    limit = results[0]["limit_rps"]
    verdict = "met" if med["fraction_build"] >= TARGET_FRACTION else "MISSED"
    print(
        f"\nmedian: {med['rps_build']:.1f} req/s over the whole build = {med['fraction_build']:.3f} of "
        f"the {limit:.0f} req/s limit (target >= {TARGET_FRACTION}"
        f"{'' if pool else ', for the 3-host pool: not measured, no hosts: support'}): {verdict}; "
        f"bare client {med['bare_rps']:.1f} req/s = {med['bare_fraction']:.3f}; build / bare "
        f"{med['vs_bare']:.3f}"
    )
    med["fraction_teacher"] = median([r["fraction_teacher"] or 0 for r in results])
    print(
        f"the generate node's teacher phase alone: {med['fraction_teacher']:.3f} of the limit; "
        f"a no-op rebuild of the same target (the fixed cost) {med['noop_s']:.2f} s"
    )
    if results[0]["host_stats"] is not None:
        print(f"per-host figures in the run record: {json.dumps(results[0]['host_stats'])[:600]}")
    fo = None
    if pool and not args.no_failover:
        fo = failover(args)
        print(
            f"\nfailover: host 3 killed at {fo['killed_at_s']:.2f} s with "
            f"{fo['victim_in_flight_at_kill']} requests in flight; exit {fo['exit_code']}, "
            f"{fo['wall_s']:.2f} s; export {fo['export_lines']} lines, "
            f"{fo['export_distinct_ids']} distinct ids (of {args.rows}); requests at the servers "
            f"{fo['requests_per_host']} = {fo['requests_total']} (bound {fo['bound']} = "
            f"{args.rows} + {fo['victim_in_flight_at_kill']}): {'ok' if fo['ok'] else 'FAILED'}",
            flush=True,
        )
        if fo["exit_code"] != 0:
            print(fo["stderr_tail"])
        if fo["host_stats"] is not None:
            print(f"per-host figures in the run record: {json.dumps(fo['host_stats'])[:600]}")
    elif not pool:
        print("failover: not available (no hosts: support)")
    print(f"{load()} at the end")
    payload = {
        "date": started,
        "machine": machine(),
        "code": code,
        "load_end": load(),
        "pool_available": pool,
        "config": {k: v for k, v in vars(args).items() if k != "json_out"},
        "rounds": results,
        "median": med,
        "failover": fo,
    }
    json_out.write_text(json.dumps(payload, indent=2))
    print(f"results: {json_out.relative_to(REPO) if json_out.is_relative_to(REPO) else json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
