"""Benchmark "engine overhead" of issue 11: fdbuild's CPU per generation against the bare
``ollama`` client's, with a teacher that costs nothing.

One Ollama-protocol test server (``benchmarks/_server.py``, its own process) with zero
latency. Per round, interleaved:

* **fdbuild**: ``fdbuild build`` (the real CLI, cold, ``concurrency: 8``) of
  ``source -> generate (n: 1) -> rules gate -> select -> jsonl export`` at ``--rows``
  (20,000) and at ``--small`` (500) rows;
* **bare client**: ``benchmarks/_bare_client.py``, the official ``ollama.AsyncClient``
  with 8 workers, the same two numbers of chats.

CPU is user + system of the whole child process (``wait4``). **CPU per generation** is
the marginal one, (CPU at 20k - CPU at 500) / 19,500, so start-up, imports and a build's
fixed cost (lock, run record, identity lookups) fall out; the whole process's CPU / 20k
is given too. Target: fdbuild <= 1.15x the bare client's. Generations/s = 20k / the
build's wall time (the server shares the machine's 2 cores with the client).

``--profile``: one more build at ``--profile-rows`` (5,000) under cProfile, the top
costs inside fdbuild printed and written to ``benchmarks/.work/profile-engine.*``; with
``--py-spy PATH`` also a py-spy sampling profile of the same build (no cProfile
overhead), self time per function.

``--workers``: where the checkout's ``fdbuild build`` takes an option to spread teacher
calls over worker processes (issue 11: "teacher calls are spread over worker
processes, each with its own client"), generations/s with 1 and with 2 of them. The
option's spelling is found in ``fdbuild build --help`` (``--teacher-workers``,
``--workers``), else reported as not available.

    python benchmarks/bench_engine.py                      # 20k generations, 2 rounds
    python benchmarks/bench_engine.py --quick              # 4k generations, 1 round
    python benchmarks/bench_engine.py --profile --py-spy /work/bench/tools-venv/bin/py-spy
"""

from __future__ import annotations

import argparse
import json
import pstats
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, WORK, fdbuild_exe, load, machine, median, table, target_yaml  # noqa: E402
from _scale import (  # noqa: E402
    Server,
    bare_client,
    build_help,
    env,
    new_project,
    run_build,
    use_code,
    write_questions,
)

TARGET_RATIO = 1.15


def make(name: str, rows: int, url: str, concurrency: int) -> Path:
    directory = new_project(WORK / name)
    write_questions(directory, rows)
    path = directory / "bench.yaml"
    path.write_text(target_yaml(concurrency=concurrency, host=url), encoding="utf-8")
    return path


def fd_build(name: str, rows: int, server: Server, concurrency: int, *extra: str) -> dict[str, Any]:
    server.zero()
    run = run_build(make(name, rows, server.url, concurrency), *extra)
    if run.code != 0:
        raise SystemExit(f"{name}: exit {run.code}: {run.stderr[-2000:]}")
    assert server.requests == rows, (server.requests, rows)
    assert run.summary["teacher_calls"] == rows, run.summary
    return {"wall_s": run.wall_s, "cpu_s": run.cpu_s}


def bare(rows: int, server: Server, concurrency: int, offset: int) -> dict[str, Any]:
    server.zero()
    out = bare_client([server.url], requests=rows, concurrency=concurrency, offset=offset)
    assert server.requests == rows, (server.requests, rows)
    return out


def workers_option() -> str | None:
    text = build_help()
    for option in ("--teacher-workers", "--workers", "--teacher-procs"):
        if option in text:
            return option
    return None


def profile(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    """cProfile (and py-spy) of one build; the top fdbuild costs."""
    target = make("engine-profile", args.profile_rows, server.url, args.concurrency)
    out = WORK / "profile-engine.prof"
    server.zero()
    cmd = [
        sys.executable,
        "-m",
        "cProfile",
        "-o",
        str(out),
        fdbuild_exe(),
        "build",
        target.name,
        "-q",
    ]
    subprocess.run(cmd, cwd=target.parent, env=env(), check=True, capture_output=True)
    stats = pstats.Stats(str(out))
    raw = stats.stats  # type: ignore[attr-defined]
    total = max(ct for (_, _, ct, _, _) in raw.values())
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _) in raw.items():
        if "/fdbuild/" in file:
            short = file.split("/fdbuild/", 1)[1]
            rows.append((ct, tt, nc, f"fdbuild/{short}:{line} {func}"))
    rows.sort(reverse=True)
    top_cum = rows[: args.top]
    top_self = sorted(rows, key=lambda r: r[1], reverse=True)[: args.top]
    ext = []
    for (file, line, func), (_cc, nc, tt, _ct, _) in raw.items():
        ext.append((tt, nc, f"{Path(file).name}:{line} {func}"))
    ext.sort(reverse=True)
    report = {
        "rows": args.profile_rows,
        "total_s": total,
        "cumulative": [
            {
                "cum_s": c,
                "self_s": t,
                "calls": n,
                "where": w,
                "per_gen_ms": c / args.profile_rows * 1e3,
            }
            for c, t, n, w in top_cum
        ],
        "self": [
            {
                "self_s": t,
                "cum_s": c,
                "calls": n,
                "where": w,
                "per_gen_ms": t / args.profile_rows * 1e3,
            }
            for c, t, n, w in top_self
        ],
        "self_any": [
            {"self_s": t, "calls": n, "where": w, "per_gen_ms": t / args.profile_rows * 1e3}
            for t, n, w in ext[: args.top]
        ],
    }
    if args.py_spy:
        report["py_spy"] = py_spy(args, server, target)
    return report


def py_spy(args: argparse.Namespace, server: Server, target: Path) -> dict[str, Any]:
    """Sampling profile: self and inclusive samples per function (fdbuild's, and all)."""
    import shutil

    shutil.rmtree(target.parent / ".fdbuild", ignore_errors=True)
    (target.parent / ".fdbuild").mkdir()
    server.zero()
    raw = WORK / "profile-engine-pyspy.txt"
    cmd = [
        str(args.py_spy),
        "record",
        "-r",
        "200",
        "-f",
        "raw",
        "-o",
        str(raw),
        "--",
        sys.executable,
        fdbuild_exe(),
        "build",
        target.name,
        "-q",
    ]
    subprocess.run(cmd, cwd=target.parent, env=env(), check=True, capture_output=True)
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for f in set(frames):
            if "fdbuild/" in f:
                inclusive[f] += n
    return {
        "samples": total,
        "self": [{"frame": f, "share": n / total} for f, n in own.most_common(args.top)],
        "inclusive_fdbuild": [
            {"frame": f, "share": n / total} for f, n in inclusive.most_common(args.top)
        ],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--small", type=int, default=500, help="the size whose CPU is subtracted")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="4,000 generations, 1 round")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--profile-rows", type=int, default=5000)
    p.add_argument("--py-spy", type=Path, default=None, help="py-spy executable, for --profile")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--no-workers", action="store_true", help="skip the worker-processes runs")
    p.add_argument("--workers-only", action="store_true", help="only the worker-processes runs")
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument("--rev", default="HEAD", help="fdbuild as committed at REV, or `worktree`")
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.repeats = 4000, 1
    suffix = "-quick" if args.quick else "-workers" if args.workers_only else ""
    json_out = args.json_out or WORK / f"engine-results{suffix}.json"
    WORK.mkdir(parents=True, exist_ok=True)
    code = use_code(args.rev)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(f"fdbuild engine-overhead benchmark, {started}\n{machine()}\n{load()} at the start")
    print(f"measured: fdbuild at {code}")
    print(
        f"{args.rows} generations (minus {args.small} for the marginal CPU), zero-latency server, "
        f"concurrency {args.concurrency}\n",
        flush=True,
    )
    big, small = args.rows, args.small
    results = []
    with Server("engine") as server:
        # warm-up: byte-code caches, the page cache, the server's first connections
        fd_build("engine-warm", small, server, args.concurrency)
        bare(small, server, args.concurrency, 10**7)
        for rnd in range(1, 0 if args.workers_only else args.repeats + 1):
            r: dict[str, Any] = {"round": rnd}
            r["fd_big"] = fd_build(f"engine-big-{rnd}", big, server, args.concurrency)
            r["bare_big"] = bare(big, server, args.concurrency, 10**6 * rnd)
            r["fd_small"] = fd_build(f"engine-small-{rnd}", small, server, args.concurrency)
            r["bare_small"] = bare(small, server, args.concurrency, 10**6 * rnd + 500_000)
            d = big - small
            r["fd_cpu_ms"] = (r["fd_big"]["cpu_s"] - r["fd_small"]["cpu_s"]) / d * 1e3
            r["bare_cpu_ms"] = (r["bare_big"]["cpu_s"] - r["bare_small"]["cpu_s"]) / d * 1e3
            r["bare_loop_cpu_ms"] = r["bare_big"]["loop_cpu_s"] / big * 1e3
            r["fd_cpu_whole_ms"] = r["fd_big"]["cpu_s"] / big * 1e3
            r["bare_cpu_whole_ms"] = r["bare_big"]["cpu_s"] / big * 1e3
            r["ratio"] = r["fd_cpu_ms"] / r["bare_cpu_ms"]
            r["fd_gps"] = big / r["fd_big"]["wall_s"]
            r["bare_gps"] = big / r["bare_big"]["loop_wall_s"]
            results.append(r)
            print(
                f"round {rnd}: fdbuild {r['fd_cpu_ms']:.3f} ms CPU per generation "
                f"({r['fd_cpu_whole_ms']:.3f} whole process), {r['fd_gps']:.0f} gen/s; bare client "
                f"{r['bare_cpu_ms']:.3f} ms ({r['bare_cpu_whole_ms']:.3f}), {r['bare_gps']:.0f} gen/s; "
                f"ratio {r['ratio']:.2f}x",
                flush=True,
            )
        option = None if args.no_workers else workers_option()
        workers: dict[str, Any] | None = None
        if option:
            workers = {"option": option}
            for n in (0, 1, 2):  # 0: without the option, the baseline of the same moment
                extra = (option, str(n)) if n else ()
                w = fd_build(f"engine-workers-{n}", big, server, args.concurrency, *extra)
                workers[str(n)] = {**w, "gps": big / w["wall_s"]}
                print(
                    f"{option} {n or '(none)'}: {big / w['wall_s']:.0f} gen/s, CPU {w['cpu_s']:.1f} s",
                    flush=True,
                )
        prof = profile(args, server) if args.profile else None

    keys = [
        "fd_cpu_ms",
        "bare_cpu_ms",
        "ratio",
        "fd_cpu_whole_ms",
        "bare_cpu_whole_ms",
        "bare_loop_cpu_ms",
        "fd_gps",
        "bare_gps",
    ]
    if not results:  # --workers-only
        if workers:
            print(
                "\n"
                + ", ".join(
                    f"{k} worker(s): {workers[k]['gps']:.0f} gen/s" for k in ("0", "1", "2")
                )
            )
        json_out.write_text(
            json.dumps({"date": started, "code": code, "workers": workers}, indent=2)
        )
        print(f"{load()} at the end")
        return 0
    med = {k: median([r[k] for r in results]) for k in keys}
    rows = [
        [r["round"]] + [f"{r[k]:.3f}" if "ms" in k or k == "ratio" else f"{r[k]:.0f}" for k in keys]
        for r in results
    ]
    rows.append(
        ["median"]
        + [f"{med[k]:.3f}" if "ms" in k or k == "ratio" else f"{med[k]:.0f}" for k in keys]
    )
    print()
    print(
        table(
            [
                "round",
                "fdbuild ms/gen",
                "bare ms/gen",
                "ratio",
                "fdbuild whole",
                "bare whole",
                "bare loop",
                "fdbuild gen/s",
                "bare gen/s",
            ],
            rows,
        )
    )
    verdict = "met" if med["ratio"] <= TARGET_RATIO else "MISSED"
    print(
        f"\nmedian: fdbuild {med['fd_cpu_ms']:.3f} ms CPU per generation against the bare client's "
        f"{med['bare_cpu_ms']:.3f} ms: {med['ratio']:.2f}x (target <= {TARGET_RATIO}): {verdict}; "
        f"{med['fd_gps']:.0f} against {med['bare_gps']:.0f} generations/s"
    )
    if workers:
        print(
            f"teacher calls over worker processes ({workers['option']}): none "
            f"{workers['0']['gps']:.0f} gen/s, 1 worker "
            f"{workers['1']['gps']:.0f} gen/s, 2 workers {workers['2']['gps']:.0f} gen/s"
        )
    elif args.no_workers:
        print("teacher calls over worker processes: not measured (--no-workers)")
    else:
        print("teacher calls over worker processes: not available in this checkout")
    if prof:
        print(
            f"\ncProfile of one {prof['rows']}-generation build ({prof['total_s']:.2f} s under the profiler):"
        )
        print(
            table(
                ["cumulative s", "self s", "calls", "ms/gen", "fdbuild function"],
                [
                    [
                        f"{x['cum_s']:.2f}",
                        f"{x['self_s']:.2f}",
                        x["calls"],
                        f"{x['per_gen_ms']:.3f}",
                        x["where"],
                    ]
                    for x in prof["cumulative"]
                ],
            )
        )
        print()
        print(
            table(
                ["self s", "calls", "ms/gen", "any function, by self time"],
                [
                    [f"{x['self_s']:.2f}", x["calls"], f"{x['per_gen_ms']:.3f}", x["where"]]
                    for x in prof["self_any"]
                ],
            )
        )
        if "py_spy" in prof:
            ps = prof["py_spy"]
            print(f"\npy-spy, {ps['samples']} samples; inclusive share of fdbuild frames:")
            for x in ps["inclusive_fdbuild"]:
                print(f"  {x['share']:6.1%}  {x['frame']}")
            print("self (leaf) share:")
            for x in ps["self"]:
                print(f"  {x['share']:6.1%}  {x['frame']}")
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
        "rounds": results,
        "median": med,
        "workers": workers,
        "profile": prof,
    }
    json_out.write_text(json.dumps(payload, indent=2))
    print(f"results: {json_out.relative_to(REPO) if json_out.is_relative_to(REPO) else json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
