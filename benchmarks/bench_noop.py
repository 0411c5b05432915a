"""Benchmark (a) of issues 2 and 9: the no-op rebuild against the floor of hashing the
source, and what verified reads cost on it.

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
   CLI start-up (``fdbuild --version``); the same no-op with artifact verification
   switched off (``_noverify.py``: a memo hit checks only that the artifact exists, as
   before issue 9); the floor, reading the source file and hashing it with xxh3_128; and
   the verified-read cost of the artifacts the no-op touches (``verify_artifact`` on each:
   one streaming xxh3_128 of its bytes against its sidecar) and what the no-op itself
   pays for them (``looks_intact``: stat + sidecar); for context, json-parsing the source.

Reported per size: no-op wall minus start-up (target <= 0.25 s, issue 9) and its ratio to
the floor (target <= 1.5x, issue 2), the same in CPU time, the no-op without
verification, the verification costs, start-up (target <= 0.5 s), the peak RSS of the
no-op process, and what the rows add over the 100-row project (the fixed cost of a
build: imports, target loading, the ``/api/tags`` round trip, lock and run record).
``--compare`` prints an earlier run's figures (its results JSON) beside this one's;
``--profile`` profiles one no-op of the largest size (cProfile, ``-X importtime``, and
pyinstrument if installed) into ``benchmarks/.work/``.

    python benchmarks/bench_noop.py               # 100k and 1M rows (~12 min cold)
    python benchmarks/bench_noop.py --rows 100000 # one size
    python benchmarks/bench_noop.py --quick       # 10k rows, a smoke run
    python benchmarks/bench_noop.py --reuse --compare benchmarks/.work/before.json
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

TARGET_RATIO = 1.5  # issue 2: no-op beyond start-up / floor
TARGET_BEYOND_S = 0.25  # issue 9: no-op beyond start-up, seconds, at 100k and 1M rows
TARGET_STARTUP_S = 0.5
FIXED_ROWS = 100
NOVERIFY = Path(__file__).resolve().parent / "_noverify.py"


# ----------------------------------------------------------------------------- first build


def first_build(project: Path, target: Path) -> dict[str, Any]:
    """The cold build, in-process, with the instant teacher patched in."""
    import fdbuild.execute.teachers as teachers_mod
    from fdbuild.execute.build import build
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


def hash_file(path: Path, chunk: int = 1 << 20) -> float:
    """Read and xxh3_128 a file, streamed as ``fdbuild.keys.file_digest`` does it (one
    reused 1 MiB buffer; the first rounds of these figures read 4 MiB ``bytes`` chunks,
    ~20 % slower at 170 MB)."""
    import xxhash

    t0 = time.perf_counter()
    h = xxhash.xxh3_128()
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    h.hexdigest()
    return time.perf_counter() - t0


def parse_file(path: Path) -> float:
    t0 = time.perf_counter()
    loads = json.loads
    with open(path, "rb") as fh:
        for line in fh:
            loads(line)
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- verification


class Verification:
    """The verified-read cost of the artifacts a no-op touches (every non-export node's
    output: a memo hit checks it), timed in this process with fdbuild's own functions.

    ``full``: ``verify_artifact`` on each, one streaming xxh3_128 of its bytes compared with
    the sidecar written with it (what a build pays before reading an artifact's rows).
    ``memo``: ``looks_intact`` on each, stat + sidecar (what a no-op pays for them).
    Without fdbuild's verification module (an older checkout) ``full`` is a streamed
    xxh3_128 of the same files, as a stand-in, and ``memo`` is not measured.
    """

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.bytes = sum(p.stat().st_size for p in paths)
        try:
            from fdbuild.store.verify import looks_intact, verify_artifact
        except ImportError:
            self.stand_in = True
            self._verify: Any = hash_file
            self._intact: Any = None
        else:
            self.stand_in = False
            self._verify, self._intact = verify_artifact, looks_intact
            for path in paths:  # sound to begin with, or the figures mean nothing
                verdict = verify_artifact(path)
                assert verdict.ok and not verdict.legacy, (path, verdict)

    def full(self) -> float:
        t0 = time.perf_counter()
        for path in self.paths:
            self._verify(path)
        return time.perf_counter() - t0

    def memo(self) -> float | None:
        if self._intact is None:
            return None
        t0 = time.perf_counter()
        for path in self.paths:
            assert self._intact(path), path
        return time.perf_counter() - t0


def touched_artifacts(project: Path, record: dict[str, Any]) -> list[Path]:
    """The artifact files of a run record's non-export nodes (the export is checked by
    its file's size and mtime, not through the store)."""
    from fdbuild.store.objects import ArtifactStore

    store = ArtifactStore(project / ".fdbuild" / "objects")
    paths = [
        store.path(node["output"]["digest"])
        for node in record["nodes"].values()
        if node["kind"] != "export" and node["output"].get("digest")
    ]
    missing = [p for p in paths if not p.exists()]
    assert not missing, f"artifacts of a no-op missing: {missing}"
    return paths


# ----------------------------------------------------------------------------- no-op


class NoopRunner:
    """Runs the CLI against the test server. ``code``: a checkout of other fdbuild code
    to run instead of the installed one (put first on ``PYTHONPATH``; ``--baseline``)."""

    def __init__(self, server: ServerProcess, code: Path | None = None) -> None:
        self.server = server
        self.exe = fdbuild_exe()
        extra = {"OLLAMA_HOST": server.url}
        if code is not None:
            extra["PYTHONPATH"] = str(code)
        self.env = child_env(**extra)
        self.noverify_ok: bool | None = None  # does _noverify.py apply to this checkout?
        if code is not None:
            where = subprocess.run(
                [sys.executable, "-c", "import fdbuild; print(fdbuild.__file__)"],
                cwd=WORK,  # not the checkout: `-c` puts the working folder on sys.path
                env=self.env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            if not Path(where).resolve().is_relative_to(code.resolve()):
                raise SystemExit(f"--baseline {code}: fdbuild is imported from {where} instead")

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

    def once(
        self, project: Path, *, warm_up: bool = False, verify: bool = True
    ) -> tuple[Timed, dict[str, Any]]:
        """One checked no-op rebuild; returns its timing and its run record.

        The warm-up may recompute nodes from cached rows (it must still ask the teacher
        nothing): with ``--reuse``, or when the engine changed since the first build, a
        recipe may have gained a field. The timed runs after it must be pure memo hits.
        ``verify=False`` runs the CLI through ``_noverify.py``.
        """
        export = project / "out" / "answers.jsonl"
        before = export.stat()
        self.server.reset()
        cmd = [self.exe] if verify else [sys.executable, str(NOVERIFY)]
        t = run_timed([*cmd, "build", "bench.yaml", "--json"], cwd=project, env=self.env)
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
            return t, record
        assert not not_memo, f"nodes recomputed in a no-op rebuild: {not_memo}"
        after = export.stat()
        assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size), (
            "the no-op rebuild rewrote the export"
        )
        return t, record

    def check_noverify(self, project: Path) -> bool:
        """Whether ``_noverify.py`` can switch verification off in this checkout (exit 4:
        it has no verification to switch off, e.g. before issue 9)."""
        if self.noverify_ok is None:
            t = run_timed([sys.executable, str(NOVERIFY), "--version"], cwd=project, env=self.env)
            self.noverify_ok = t.code == 0
            if not self.noverify_ok:
                print(f"  no-op without verification not measured: {t.stderr.strip()}")
        return self.noverify_ok

    def profile(self, project: Path) -> dict[str, str]:
        """One no-op under cProfile, one with ``-X importtime`` and, if installed,
        pyinstrument; returns report paths."""
        outputs: dict[str, str] = {}
        prof = WORK / f"profile-{project.name}.prof"
        build = ["-m", "fdbuild", "build", "bench.yaml", "--json"]
        cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), *build]
        subprocess.run(cmd, cwd=project, env=self.env, check=True, capture_output=True)
        import pstats

        text = WORK / f"profile-{project.name}-cprofile.txt"
        with open(text, "w") as fh:
            stats = pstats.Stats(str(prof), stream=fh)
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(60)
        outputs["cprofile"] = str(text.relative_to(REPO))
        imports = WORK / f"profile-{project.name}-importtime.txt"
        done = subprocess.run(
            [sys.executable, "-X", "importtime", *build],
            cwd=project,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        imports.write_text(done.stderr)
        outputs["importtime"] = str(imports.relative_to(REPO))
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            return outputs
        report = WORK / f"profile-{project.name}-pyinstrument.txt"
        cmd = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(report), *build]
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
    p.add_argument(
        "--no-unverified",
        action="store_true",
        help="skip the no-op with verification switched off",
    )
    p.add_argument("--profile", action="store_true", help="profile one no-op of the largest size")
    p.add_argument(
        "--compare",
        type=Path,
        help="an earlier run's results JSON, printed beside this run's figures",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="a checkout of earlier fdbuild code (e.g. `git archive REV | tar -x -C DIR`) "
        "whose own bench_noop.py prepared its projects in DIR/benchmarks/.work: its no-op "
        "and start-up run in the same rounds (PYTHONPATH=DIR), on those projects",
    )
    p.add_argument(
        "--json-out", type=Path, help="default: benchmarks/.work/noop-results[-quick].json"
    )
    p.add_argument("--first-build", type=Path, help=argparse.SUPPRESS)  # internal: child mode
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
    load_start = load()
    print(
        f"fdbuild no-op rebuild benchmark, {started}\n{machine()}\n{load_start} at the start\n",
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
            "noop_unverified": [],
            "noop_baseline": [],
            "floor": [],
            "verify_full": [],
            "verify_memo": [],
        }

    checks: dict[int, Verification] = {}
    with ServerProcess() as server:
        runner = NoopRunner(server)
        runner.startup()  # warm-ups: .pyc cache, page cache, and a check of each project
        base = baseline_runner(server, args.baseline, sizes)
        unverified = not args.no_unverified
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
            _, record = runner.once(project)  # a pure no-op: what every timed one touches
            checks[rows] = Verification(touched_artifacts(project, record))
            checks[rows].full()  # page cache
            if unverified:
                unverified = runner.check_noverify(project)
            if base is not None:
                base.once(baseline_project(args.baseline, rows), warm_up=True)
        # Interleaved rounds: load from other work on the machine falls on every size
        # and on the baselines alike.
        startups: list[Timed] = []
        base_startups: list[Timed] = []
        for i in range(args.repeats):
            startups.append(runner.startup())
            if base is not None:
                base_startups.append(base.startup())
            for rows in sizes:
                project = WORK / f"noop-{rows}"
                r = results[rows]
                r["noop"].append(runner.once(project)[0])
                if unverified:
                    r["noop_unverified"].append(runner.once(project, verify=False)[0])
                if base is not None:
                    r["noop_baseline"].append(base.once(baseline_project(args.baseline, rows))[0])
                r["floor"].append(hash_file(project / "data" / "questions.jsonl"))
                r["verify_full"].append(checks[rows].full())
                r["verify_memo"].append(checks[rows].memo())
            print(
                f"round {i + 1}/{args.repeats}: "
                + ", ".join(f"{rows:,}: {results[rows]['noop'][-1].wall_s:.3f}s" for rows in sizes),
                flush=True,
            )
        profiles = runner.profile(WORK / f"noop-{max(sizes)}") if args.profile else {}

    startup = median([t.wall_s for t in startups])
    startup_cpu = median([t.cpu_s for t in startups])
    base_startup = median([t.wall_s for t in base_startups]) if base_startups else None
    base_startup_cpu = median([t.cpu_s for t in base_startups]) if base_startups else None
    fixed = results.get(FIXED_ROWS) if not args.no_fixed else None
    for rows in sizes:
        summarise(results[rows], checks[rows], startup, startup_cpu, fixed, WORK / f"noop-{rows}")
        summarise_baseline(results[rows], base_startup, base_startup_cpu)
    report(results, sizes, fixed, startup, startup_cpu, args.repeats, args.compare)
    if base_startup is not None:
        print_baseline(args.baseline, results, sizes, startup, base_startup)
    for rows in sizes:
        fb = results[rows]["first_build"]
        print(
            f"first build of {rows:,} rows (in-process, instant teacher): {fb['wall_s']:.1f}s, "
            f"{fb['generations'] / max(fb['wall_s'], 1e-9):.0f} generations/s"
            + (f", peak RSS {fb['max_rss_mib']:.0f} MiB" if "max_rss_mib" in fb else "")
        )
    if profiles:
        print("profiles: " + ", ".join(f"{k}: {v}" for k, v in profiles.items()))
    load_end = load()
    print(f"{load_end} at the end")
    payload = {
        "date": started,
        "machine": machine(),
        "load_start": load_start,
        "load_end": load_end,
        "repeats": args.repeats,
        "startup_s": startup,
        "startup_cpu_s": startup_cpu,
        "startup_runs_s": [round(t.wall_s, 4) for t in startups],
        "baseline": str(args.baseline) if args.baseline else None,
        "baseline_revision": baseline_revision(args.baseline),
        "baseline_startup_s": base_startup,
        "baseline_startup_cpu_s": base_startup_cpu,
        "results": [results[r] for r in sizes],
        "profiles": profiles,
        "targets": {
            "ratio": TARGET_RATIO,
            "beyond_startup_s": TARGET_BEYOND_S,
            "startup_s": TARGET_STARTUP_S,
        },
    }
    args.json_out.write_text(json.dumps(payload, indent=2))
    print(
        f"results: {args.json_out.relative_to(REPO) if args.json_out.is_relative_to(REPO) else args.json_out}"
    )
    return 0


def summarise(
    r: dict[str, Any],
    check: Verification,
    startup: float,
    startup_cpu: float,
    fixed: dict[str, Any] | None,
    project: Path,
) -> None:
    """Medians and derived figures of one size, in place (the raw samples are dropped)."""
    r["noop_s"] = median([t.wall_s for t in r["noop"]])
    r["noop_cpu_s"] = median([t.cpu_s for t in r["noop"]])
    r["noop_runs_s"] = [round(t.wall_s, 4) for t in r["noop"]]
    r["max_rss_mib"] = max(t.max_rss_kib for t in r["noop"]) / 1024
    r["floor_s"] = median(r["floor"])
    r["export_hash_s"] = median([hash_file(project / "out" / "answers.jsonl") for _ in range(3)])
    parses = 1 if r["rows"] >= 1_000_000 else 3
    r["json_parse_s"] = median(
        [parse_file(project / "data" / "questions.jsonl") for _ in range(parses)]
    )
    r["noop_net_s"] = r["noop_s"] - startup
    r["noop_net_cpu_s"] = r["noop_cpu_s"] - startup_cpu
    r["ratio"] = r["noop_net_s"] / r["floor_s"]
    r["ratio_cpu"] = r["noop_net_cpu_s"] / r["floor_s"]
    r["fixed_cost_project"] = r is fixed
    r["unverified_s"] = r["unverified_net_s"] = None
    if r["noop_unverified"]:
        r["unverified_s"] = median([t.wall_s for t in r["noop_unverified"]])
        r["unverified_net_s"] = r["unverified_s"] - startup
        r["unverified_runs_s"] = [round(t.wall_s, 4) for t in r["noop_unverified"]]
    r["verified_artifacts"] = len(check.paths)
    r["verified_bytes"] = check.bytes
    r["verify_stand_in"] = check.stand_in
    r["verify_full_s"] = median(r["verify_full"])
    memo = [v for v in r["verify_memo"] if v is not None]
    r["verify_memo_s"] = median(memo) if memo else None
    # Marginal: what the rows add to the no-op against what they add to the floor (the
    # slope over the fixed-cost project), i.e. with the fixed cost taken out.
    r["marginal_ratio"] = None
    r["row_part_s"] = None
    if fixed is not None and r is not fixed:
        r["row_part_s"] = r["noop_s"] - fixed["noop_s"]
        if r["floor_s"] > fixed["floor_s"]:
            r["marginal_ratio"] = r["row_part_s"] / (r["floor_s"] - fixed["floor_s"])
    for raw in ("noop", "noop_unverified", "floor", "verify_full", "verify_memo"):
        del r[raw]


def summarise_baseline(r: dict[str, Any], startup: float | None, startup_cpu: float | None) -> None:
    runs = r.pop("noop_baseline")
    if not runs or startup is None or startup_cpu is None:
        return
    b: dict[str, Any] = {"noop_s": median([t.wall_s for t in runs])}
    b["noop_cpu_s"] = median([t.cpu_s for t in runs])
    b["noop_runs_s"] = [round(t.wall_s, 4) for t in runs]
    b["noop_net_s"] = b["noop_s"] - startup
    b["noop_net_cpu_s"] = b["noop_cpu_s"] - startup_cpu
    b["ratio"] = b["noop_net_s"] / r["floor_s"]
    b["max_rss_mib"] = max(t.max_rss_kib for t in runs) / 1024
    r["baseline"] = b


# ----------------------------------------------------------------------------- baseline


def baseline_project(code: Path, rows: int) -> Path:
    return code / "benchmarks" / ".work" / f"noop-{rows}"


def baseline_revision(code: Path | None) -> str | None:
    """What the baseline checkout is: its REVISION file (written by whoever exported it)."""
    if code is None:
        return None
    marker = code / "REVISION"
    return marker.read_text().strip() if marker.exists() else "unknown revision"


def baseline_runner(server: ServerProcess, code: Path | None, sizes: list[int]) -> Any:
    """A runner of the baseline checkout, after checking its projects are prepared."""
    if code is None:
        return None
    for rows in sizes:
        project = baseline_project(code, rows)
        if not prepared(project, rows, reuse=True):
            raise SystemExit(
                f"--baseline: {project} has no first build of {rows:,} rows; run "
                f"`python {code / 'benchmarks' / 'bench_noop.py'} --rows {rows}` there first"
            )
    return NoopRunner(server, code)


def print_baseline(
    code: Path,
    results: dict[int, dict[str, Any]],
    sizes: list[int],
    startup: float,
    base_startup: float,
) -> None:
    """The baseline's no-op beside this code's, from the same rounds."""
    rows_out = []
    for rows in sizes:
        r = results[rows]
        b = r.get("baseline")
        if b is None:
            continue
        rows_out.append(
            [
                f"{rows:,}",
                f"{b['noop_net_s']:.3f}",
                f"{r['noop_net_s']:.3f}",
                f"{b['noop_net_s'] / r['noop_net_s']:.1f}x",
                f"{b['noop_net_cpu_s']:.3f}",
                f"{r['noop_net_cpu_s']:.3f}",
                f"{b['ratio']:.0f}x",
                f"{r['ratio']:.0f}x",
                f"{b['max_rss_mib']:.0f}",
                f"{r['max_rss_mib']:.0f}",
            ]
        )
    print(
        f"\nbaseline, same rounds: {code} ({baseline_revision(code)}); start-up "
        f"{base_startup * 1000:.0f} ms, now {startup * 1000:.0f} ms"
    )
    print(
        table(
            [
                "rows",
                "baseline: - start-up",
                "now",
                "faster",
                "baseline: CPU s",
                "now",
                "baseline: / floor",
                "now",
                "baseline: RSS MiB",
                "now",
            ],
            rows_out,
        )
    )


def _ms(seconds: float | None, digits: int = 0) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.{digits}f}"


def report(
    results: dict[int, dict[str, Any]],
    sizes: list[int],
    fixed: dict[str, Any] | None,
    startup: float,
    startup_cpu: float,
    repeats: int,
    compare: Path | None,
) -> None:
    noop_rows, verify_rows = [], []
    for rows in sizes:
        r = results[rows]
        is_fixed = r is fixed
        verdict = (
            "(fixed)" if is_fixed else ("met" if r["noop_net_s"] <= TARGET_BEYOND_S else "MISSED")
        )
        noop_rows.append(
            [
                f"{rows:,}",
                f"{r['source_bytes'] / 1e6:.1f}",
                f"{r['noop_s']:.3f}",
                f"{r['noop_net_s']:.3f}",
                verdict,
                f"{r['noop_net_cpu_s']:.3f}",
                f"{r['floor_s'] * 1000:.1f}",
                f"{r['ratio']:.0f}x",
                _ms(r["row_part_s"], 0)
                if r["row_part_s"] is None
                else f"{r['row_part_s'] * 1000:+.0f}",
                f"{r['json_parse_s']:.2f}",
                f"{r['max_rss_mib']:.0f}",
            ]
        )
        extra = "-"
        if r["unverified_net_s"] is not None:
            extra = f"{(r['noop_net_s'] - r['unverified_net_s']) * 1000:+.0f}"
        verify_rows.append(
            [
                f"{rows:,}",
                str(r["verified_artifacts"]),
                f"{r['verified_bytes'] / 1e6:.1f}",
                _ms(r["verify_full_s"], 1) + (" (stand-in)" if r["verify_stand_in"] else ""),
                f"{r['verify_full_s'] / r['floor_s']:.1f}x",
                _ms(r["verify_memo_s"], 2),
                "-" if r["unverified_net_s"] is None else f"{r['unverified_net_s']:.3f}",
                f"{r['noop_net_s']:.3f}",
                extra,
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
                f"<= {TARGET_BEYOND_S} s",
                "(CPU s)",
                "floor ms",
                "ratio",
                "rows add ms",
                "json parse s",
                "peak RSS MiB",
            ],
            noop_rows,
        )
    )
    print()
    print(
        table(
            [
                "rows",
                "artifacts",
                "MB",
                "verify all ms",
                "/ floor",
                "no-op's check ms",
                "no-op unverified",
                "verified",
                "difference ms",
            ],
            verify_rows,
        )
    )
    print(
        f"\nstart-up (`fdbuild --version`, median of {repeats}): {startup * 1000:.0f} ms wall, "
        f"{startup_cpu * 1000:.0f} ms CPU; target <= {TARGET_STARTUP_S * 1000:.0f} ms: "
        f"{'met' if startup <= TARGET_STARTUP_S else 'MISSED'}"
    )
    print(
        f"- start-up = no-op wall - start-up wall (target <= {TARGET_BEYOND_S} s, issue 9); "
        f"ratio = that / floor, floor = read + xxh3_128 of the source (target <= "
        f"{TARGET_RATIO}x, issue 2). CPU s: the no-op's user+system time minus start-up's."
    )
    print(
        "verify all = verify_artifact on every artifact the no-op's memo hits check (one "
        "streaming xxh3_128 of its bytes against its sidecar: what reading their rows would "
        "add); no-op's check = looks_intact on them (stat + sidecar: what the no-op pays); "
        "unverified/verified: the no-op beyond start-up with verification switched off "
        "(_noverify.py) and on, same rounds."
    )
    if fixed is not None:
        print(
            f"rows add = no-op - the {FIXED_ROWS}-row project's no-op: the part of the no-op that grows "
            "with the rows, to compare with the floor (round-to-round noise is tens of ms)"
        )
    if compare is not None:
        print_comparison(compare, results, sizes, startup)


def print_comparison(
    path: Path, results: dict[int, dict[str, Any]], sizes: list[int], startup: float
) -> None:
    """An earlier run's figures beside this run's: each ratio against its own run's floor."""
    before = json.loads(path.read_text())
    old = {r["rows"]: r for r in before["results"]}
    rows_out = []
    for rows in sizes:
        if rows not in old:
            continue
        a, b = old[rows], results[rows]
        rows_out.append(
            [
                f"{rows:,}",
                f"{a['noop_net_s']:.3f}",
                f"{b['noop_net_s']:.3f}",
                f"{a['noop_net_cpu_s']:.3f}",
                f"{b['noop_net_cpu_s']:.3f}",
                f"{a['ratio']:.0f}x",
                f"{b['ratio']:.0f}x",
                f"{a['max_rss_mib']:.0f}",
                f"{b['max_rss_mib']:.0f}",
            ]
        )
    print(
        f"\nbefore: {path} ({before.get('date')}, {before.get('machine', '').split('; ')[-1]}, "
        f"{before.get('load_end')} at its end); start-up {before['startup_s'] * 1000:.0f} -> "
        f"{startup * 1000:.0f} ms"
    )
    print(
        table(
            [
                "rows",
                "before: - start-up",
                "now",
                "before: CPU s",
                "now",
                "before: ratio",
                "now",
                "before: RSS MiB",
                "now",
            ],
            rows_out,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
