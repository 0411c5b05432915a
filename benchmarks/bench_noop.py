"""Benchmark (a) of issue 2: the no-op rebuild against the floor of hashing the source.

For each size (default 100k and 1M rows, plus a 100-row project for the fixed cost):

1. write a JSONL source and a target (source -> generate n=1 -> rules gate -> select ->
   jsonl export) under ``benchmarks/.work/noop-<rows>/``;
2. first build IN-PROCESS (a child Python) through the library API with
   ``make_provider`` patched to an instant teacher whose identity is the test server's
   (1M generations over HTTP would take hours; what is measured is the rebuild);
3. start the Ollama-protocol test server (its own process) and run the real CLI,
   ``fdbuild build bench.yaml --json``, as a subprocess: one warm-up per size, then
   ``--repeats`` timed rounds; every run must make 0 generation requests (asserted at the
   server and in the ``--json`` summary), hit the node memo on every node and leave the
   export untouched;
4. in the same rounds, interleaved so that load from elsewhere falls on all alike: the
   CLI start-up (``fdbuild --version``) and the floor, reading the source file and
   hashing it with xxh3_128; for context, json-parsing every line of it.

Reported per size: no-op wall minus start-up, the floor, their ratio (target <= 1.5x),
the same in CPU time, start-up (target <= 0.5 s), the peak RSS of the no-op process,
and the marginal ratio over the 100-row project (the fixed cost of a build: imports,
target loading, the ``/api/tags`` round trip, lock and run record). ``--profile``
profiles one no-op of the largest size (cProfile, and pyinstrument if installed) into
``benchmarks/.work/``.

    python benchmarks/bench_noop.py               # 100k and 1M rows (~12 min cold)
    python benchmarks/bench_noop.py --rows 100000 # one size
    python benchmarks/bench_noop.py --quick       # 10k rows, a smoke run
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

from _common import (  # noqa: E402
    REPO,
    WORK,
    ServerProcess,
    Timed,
    child_env,
    fdbuild_exe,
    instant_provider_factory,
    load,
    machine,
    make_project,
    median,
    run_timed,
    table,
)

TARGET_RATIO = 1.5
TARGET_STARTUP_S = 0.5
FIXED_ROWS = 100


# ----------------------------------------------------------------------------- first build


def first_build(project: Path, target: Path) -> dict[str, Any]:
    """The cold build, in-process, with the instant teacher patched in."""
    import fdbuild.execute.teachers as teachers_mod
    from fdbuild.builder import build
    from fdbuild.execute.context import BuildOptions

    saved = teachers_mod.make_provider
    teachers_mod.make_provider = instant_provider_factory()
    try:
        t0 = time.perf_counter()
        outcome = build(
            [target], options=BuildOptions(argv=("bench_noop", "first-build")), root=project
        )
        wall = time.perf_counter() - t0
    finally:
        teachers_mod.make_provider = saved
    if outcome.exit_code != 0:
        raise SystemExit(
            f"first build of {project} failed: {outcome.runs[0].record['failures'][:3]}"
        )
    summary = outcome.runs[0].summary()
    return {
        "wall_s": wall,
        "generations": summary["nodes"]["answers"]["computed"],
        "exported": summary["nodes"]["export"]["rows_out"],
    }


def prepared(project: Path, rows: int, reuse: bool) -> bool:
    marker = project / "first-build.json"
    if not (reuse and marker.exists()):
        return False
    return json.loads(marker.read_text()).get("rows") == rows


# ----------------------------------------------------------------------------- floor


def hash_file(path: Path, chunk: int = 1 << 22) -> float:
    """Read and xxh3_128 a file, streamed as ``fdbuild.keys.file_digest`` does it."""
    import xxhash

    t0 = time.perf_counter()
    h = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        while data := fh.read(chunk):
            h.update(data)
    h.hexdigest()
    return time.perf_counter() - t0


def parse_file(path: Path) -> float:
    t0 = time.perf_counter()
    loads = json.loads
    with open(path, "rb") as fh:
        for line in fh:
            loads(line)
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- no-op


class NoopRunner:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.exe = fdbuild_exe()
        self.env = child_env(OLLAMA_HOST=server.url)

    def startup(self) -> Timed:
        t = run_timed([self.exe, "--version"], cwd=WORK, env=self.env)
        if t.code != 0 or "fdbuild" not in t.stdout:
            raise SystemExit(f"`fdbuild --version` failed ({t.code}): {t.stdout}{t.stderr}")
        return t

    def cached_generations(self, project: Path) -> int:
        """``--dry-run``: how many generations the row cache holds for the current keys
        (asks the teacher nothing, writes nothing)."""
        t = run_timed(
            [self.exe, "build", "bench.yaml", "--dry-run", "--json"], cwd=project, env=self.env
        )
        if t.code != 0:
            raise SystemExit(f"dry run of {project} exited {t.code}:\n{t.stderr[-3000:]}")
        return int(json.loads(t.stdout)["nodes"]["answers"]["cached"])

    def once(self, project: Path, *, warm_up: bool = False) -> Timed:
        """One checked no-op rebuild.

        The warm-up may recompute nodes from cached rows (it must still ask the teacher
        nothing): with ``--reuse``, or when the engine changed since the first build, a
        recipe may have gained a field. The timed runs after it must be pure memo hits.
        """
        export = project / "out" / "answers.jsonl"
        before = export.stat()
        self.server.reset()
        t = run_timed([self.exe, "build", "bench.yaml", "--json"], cwd=project, env=self.env)
        if t.code != 0:
            raise SystemExit(f"no-op rebuild of {project} exited {t.code}:\n{t.stderr[-3000:]}")
        summary = json.loads(t.stdout)
        served = self.server.stats()["generation_count"]
        assert served == 0, f"no-op rebuild sent {served} generation requests"
        assert summary["teacher_calls"] == 0, summary
        record = json.loads(
            (project / ".fdbuild" / "runs" / f"{summary['run_id']}.json").read_text()
        )
        not_memo = {
            n: node["reasons"]
            for n, node in record["nodes"].items()
            if not node["stats"]["memo_hit"]
        }
        if warm_up and not_memo:
            print(
                f"  warm-up recomputed {sorted(not_memo)} from cached rows, 0 teacher calls "
                f"(why: {not_memo}); {t.wall_s:.1f}s",
                flush=True,
            )
            return t
        assert not not_memo, f"nodes recomputed in a no-op rebuild: {not_memo}"
        after = export.stat()
        assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size), (
            "the no-op rebuild rewrote the export"
        )
        return t

    def profile(self, project: Path) -> dict[str, str]:
        """One no-op under cProfile and, if installed, pyinstrument; returns report paths."""
        outputs: dict[str, str] = {}
        prof = WORK / f"profile-{project.name}.prof"
        cmd = [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(prof),
            "-m",
            "fdbuild",
            "build",
            "bench.yaml",
            "--json",
        ]
        subprocess.run(cmd, cwd=project, env=self.env, check=True, capture_output=True)
        import pstats

        text = WORK / f"profile-{project.name}-cprofile.txt"
        with open(text, "w") as fh:
            stats = pstats.Stats(str(prof), stream=fh)
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(60)
        outputs["cprofile"] = str(text.relative_to(REPO))
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            return outputs
        report = WORK / f"profile-{project.name}-pyinstrument.txt"
        cmd = [
            sys.executable,
            "-m",
            "pyinstrument",
            "-r",
            "text",
            "-o",
            str(report),
            "-m",
            "fdbuild",
            "build",
            "bench.yaml",
            "--json",
        ]
        subprocess.run(cmd, cwd=project, env=self.env, check=True, capture_output=True)
        outputs["pyinstrument"] = str(report.relative_to(REPO))
        return outputs


# ----------------------------------------------------------------------------- main


def prepare(rows: int, reuse: bool) -> dict[str, Any]:
    """The project of one size with its first build done (or reused)."""
    project = WORK / f"noop-{rows}"
    if prepared(project, rows, reuse):
        print(f"[{rows:,}] reusing the first build in {project.relative_to(REPO)}", flush=True)
        return json.loads((project / "first-build.json").read_text())["first_build"]
    print(f"[{rows:,}] writing the source and building it once in-process ...", flush=True)
    make_project(project, rows, concurrency=8)
    # In a child process: this one stays small (see run_timed), and the first build's
    # peak memory is measured too.
    t = run_timed(
        [sys.executable, __file__, "--first-build", str(project)],
        cwd=REPO,
        env=child_env(),
        out=WORK / "last-first-build",
    )
    if t.code != 0:
        raise SystemExit(f"first build of {project} failed ({t.code}):\n{t.stderr[-3000:]}")
    fb = json.loads(t.stdout)
    fb["max_rss_mib"] = t.max_rss_kib / 1024
    (project / "first-build.json").write_text(json.dumps({"rows": rows, "first_build": fb}))
    print(
        f"[{rows:,}] first build: {fb['wall_s']:.1f}s ({fb['generations'] / fb['wall_s']:.0f} "
        f"generations/s with an instant teacher), peak RSS {fb['max_rss_mib']:.0f} MiB",
        flush=True,
    )
    return fb


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--rows",
        type=int,
        action="append",
        help="rows of the source (repeatable); default: 100000 and 1000000",
    )
    p.add_argument("--quick", action="store_true", help="10k rows only: a smoke run")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (median)")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="reuse a first build left in benchmarks/.work by an earlier run",
    )
    p.add_argument(
        "--no-fixed", action="store_true", help=f"skip the {FIXED_ROWS}-row fixed-cost project"
    )
    p.add_argument("--profile", action="store_true", help="profile one no-op of the largest size")
    p.add_argument(
        "--json-out", type=Path, help="default: benchmarks/.work/noop-results[-quick].json"
    )
    p.add_argument("--first-build", type=Path, help=argparse.SUPPRESS)  # internal: child mode
    args = p.parse_args(argv)
    if args.first_build:
        print(json.dumps(first_build(args.first_build, args.first_build / "bench.yaml")))
        return 0
    sizes = [10_000] if args.quick else sorted(set(args.rows or [100_000, 1_000_000]))
    args.json_out = args.json_out or WORK / (
        "noop-results-quick.json" if args.quick else "noop-results.json"
    )
    if not args.no_fixed:
        sizes = [FIXED_ROWS] + [n for n in sizes if n != FIXED_ROWS]
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(
        f"fdbuild no-op rebuild benchmark, {started}\n{machine()}\n{load()} at the start\n",
        flush=True,
    )

    results: dict[int, dict[str, Any]] = {}
    for rows in sizes:
        project = WORK / f"noop-{rows}"
        results[rows] = {
            "rows": rows,
            "first_build": prepare(rows, args.reuse),
            "source_bytes": (project / "data" / "questions.jsonl").stat().st_size,
            "export_bytes": (project / "out" / "answers.jsonl").stat().st_size,
            "noop": [],
            "startup": [],
            "floor": [],
        }

    with ServerProcess() as server:
        runner = NoopRunner(server)
        runner.startup()  # warm-ups: .pyc cache, page cache, and a check of each project
        for rows in sizes:
            project = WORK / f"noop-{rows}"
            cached = runner.cached_generations(project)
            if cached != rows:  # only possible with --reuse
                print(
                    f"[{rows:,}] {cached:,} of {rows:,} generations cached under the current keys: "
                    "the engine's keys changed since that first build; building it again",
                    flush=True,
                )
                results[rows]["first_build"] = prepare(rows, reuse=False)
            runner.once(project, warm_up=True)
        # Interleaved rounds: load from other work on the machine falls on every size
        # and on the baselines alike.
        startups: list[Timed] = []
        for i in range(args.repeats):
            startups.append(runner.startup())
            for rows in sizes:
                project = WORK / f"noop-{rows}"
                results[rows]["noop"].append(runner.once(project))
                results[rows]["floor"].append(hash_file(project / "data" / "questions.jsonl"))
            print(
                f"round {i + 1}/{args.repeats}: "
                + ", ".join(f"{rows:,}: {results[rows]['noop'][-1].wall_s:.3f}s" for rows in sizes),
                flush=True,
            )
        profiles = runner.profile(WORK / f"noop-{max(sizes)}") if args.profile else {}

    startup = median([t.wall_s for t in startups])
    startup_cpu = median([t.cpu_s for t in startups])
    out_rows = []
    fixed = results.get(FIXED_ROWS) if not args.no_fixed else None
    for rows in sizes:
        r = results[rows]
        project = WORK / f"noop-{rows}"
        r["noop_s"] = median([t.wall_s for t in r["noop"]])
        r["noop_cpu_s"] = median([t.cpu_s for t in r["noop"]])
        r["noop_runs_s"] = [round(t.wall_s, 4) for t in r["noop"]]
        r["max_rss_mib"] = max(t.max_rss_kib for t in r["noop"]) / 1024
        r["floor_s"] = median(r["floor"])
        r["export_hash_s"] = median(
            [hash_file(project / "out" / "answers.jsonl") for _ in range(3)]
        )
        r["json_parse_s"] = median(
            [
                parse_file(project / "data" / "questions.jsonl")
                for _ in range(1 if rows >= 1_000_000 else 3)
            ]
        )
        r["noop_net_s"] = r["noop_s"] - startup
        r["noop_net_cpu_s"] = r["noop_cpu_s"] - startup_cpu
        r["ratio"] = r["noop_net_s"] / r["floor_s"]
        r["ratio_cpu"] = r["noop_net_cpu_s"] / r["floor_s"]
        r["fixed_cost_project"] = r is fixed
        # Marginal: what the rows add to the no-op against what they add to the floor (the
        # slope over the fixed-cost project), i.e. with the fixed cost taken out.
        r["marginal_ratio"] = None
        if fixed is not None and r is not fixed and r["floor_s"] > fixed["floor_s"]:
            r["marginal_ratio"] = (r["noop_s"] - fixed["noop_s"]) / (
                r["floor_s"] - fixed["floor_s"]
            )
        del r["noop"], r["startup"], r["floor"]
        verdict = "(fixed)" if r is fixed else ("met" if r["ratio"] <= TARGET_RATIO else "MISSED")
        r["row_part_s"] = None if fixed is None or r is fixed else r["noop_s"] - fixed["noop_s"]
        marginal = "-" if r["row_part_s"] is None else f"{r['row_part_s'] * 1000:+.0f}"
        out_rows.append(
            [
                f"{rows:,}",
                f"{r['source_bytes'] / 1e6:.1f}",
                f"{r['noop_s']:.3f}",
                f"{r['noop_net_s']:.3f}",
                f"{r['noop_net_cpu_s']:.3f}",
                f"{r['floor_s'] * 1000:.1f}",
                f"{r['ratio']:.0f}x",
                verdict,
                marginal,
                f"{r['json_parse_s']:.2f}",
                f"{r['max_rss_mib']:.0f}",
            ]
        )
    print()
    print(
        table(
            [
                "rows",
                "source MB",
                "no-op s",
                "- start-up",
                "(CPU s)",
                "floor ms",
                "ratio",
                "<= 1.5x",
                "rows add ms",
                "json parse s",
                "peak RSS MiB",
            ],
            out_rows,
        )
    )
    print(
        f"\nstart-up (`fdbuild --version`, median of {args.repeats}): {startup * 1000:.0f} ms wall, "
        f"{startup_cpu * 1000:.0f} ms CPU; target <= {TARGET_STARTUP_S * 1000:.0f} ms: "
        f"{'met' if startup <= TARGET_STARTUP_S else 'MISSED'}"
    )
    print(
        f"ratio = (no-op wall - start-up wall) / floor, floor = read + xxh3_128 of the source; "
        f"target <= {TARGET_RATIO}x. CPU s: the no-op's user+system time minus start-up's."
    )
    if fixed is not None:
        print(
            f"rows add = no-op - the {FIXED_ROWS}-row project's no-op: the part of the no-op that grows "
            "with the rows, to compare with the floor (round-to-round noise is tens of ms)"
        )
    for rows in sizes:
        fb = results[rows]["first_build"]
        print(
            f"first build of {rows:,} rows (in-process, instant teacher): {fb['wall_s']:.1f}s, "
            f"{fb['generations'] / max(fb['wall_s'], 1e-9):.0f} generations/s"
            + (f", peak RSS {fb['max_rss_mib']:.0f} MiB" if "max_rss_mib" in fb else "")
        )
    if profiles:
        print("profiles: " + ", ".join(f"{k}: {v}" for k, v in profiles.items()))
    print(f"{load()} at the end")
    payload = {
        "date": started,
        "machine": machine(),
        "load_end": load(),
        "startup_s": startup,
        "startup_cpu_s": startup_cpu,
        "startup_runs_s": [round(t.wall_s, 4) for t in startups],
        "results": [results[r] for r in sizes],
        "profiles": profiles,
        "targets": {"ratio": TARGET_RATIO, "startup_s": TARGET_STARTUP_S},
    }
    args.json_out.write_text(json.dumps(payload, indent=2))
    print(
        f"results: {args.json_out.relative_to(REPO) if args.json_out.is_relative_to(REPO) else args.json_out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
