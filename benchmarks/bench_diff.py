"""Benchmark of issue 4: ``fdbuild diff`` of two 100k-row runs against reading both
artifacts once.

1. Build a project (source -> generate n=1 -> rules gate -> select -> jsonl export) of
   ``--rows`` rows IN-PROCESS with the instant teacher of ``_common`` (no network), then
   edit the template and build again: every generation changes, about one row in ten
   flips at the gate, so the row diff has the most work (every text compared).
   A third build changes only ``keep`` (every verdict re-applied, many flips).
2. The floor: ``pyarrow.parquet.read_table`` of the two artifacts the diff compares (the
   ``kept`` rows of A and of B), every column, median of ``--repeats``.
3. The diff: ``fdbuild.diff.runs.diff_runs`` (the library call behind ``fdbuild diff A B``:
   records, parameters, nodes, metrics, and the row diff with its 5 examples), median of
   ``--repeats``, for both pairs of runs.

Reported: each median and the ratio diff / floor (target < 3x).

    python benchmarks/bench_diff.py               # 100k rows
    python benchmarks/bench_diff.py --rows 20000  # smaller
    python benchmarks/bench_diff.py --quick       # 10k rows, 3 repeats
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, instant_provider_factory, machine, make_project, median, table  # noqa: E402

TARGET_RATIO = 3.0


def build_runs(project: Path, rows: int) -> list[str]:
    """Three builds in-process: base, template edit, keep change. Returns their run ids."""
    import fdbuild.execute.teachers as teachers_mod
    from fdbuild.execute.build import build
    from fdbuild.execute.context import BuildOptions

    target = make_project(project, rows, concurrency=8)
    text = target.read_text(encoding="utf-8")
    edited = text.replace(
        '"Question: {question}\\nSQL:"', '"Question: {question}\\nWrite one SQLite query.\\nSQL:"'
    )
    kept = edited.replace("keep: {rule_reason: ok}", "keep: {rule_reason: {in: [ok, too_short]}}")
    edits = [text, edited, kept]
    assert edits[1] != text and edits[2] != edits[1], "the benchmark target changed shape"
    saved = teachers_mod.make_provider
    teachers_mod.make_provider = instant_provider_factory()
    ids = []
    try:
        for i, content in enumerate(edits):
            target.write_text(content, encoding="utf-8")
            t0 = time.perf_counter()
            outcome = build(
                [target], options=BuildOptions(argv=("bench_diff", f"build-{i}")), root=project
            )
            print(f"  build {i + 1}: {time.perf_counter() - t0:.1f}s", flush=True)
            ids.append(outcome.runs[0].record["run_id"])
    finally:
        teachers_mod.make_provider = saved
    return ids


def floor(project: Any, a: dict[str, Any], b: dict[str, Any], node: str) -> float:
    """Read the two compared artifacts once, every column."""
    import pyarrow.parquet as pq

    from fdbuild.store.objects import ArtifactStore

    store = ArtifactStore(project.objects_dir)
    t0 = time.perf_counter()
    for record in (a, b):
        pq.read_table(store.path(record["nodes"][node]["output"]["digest"]))
    return time.perf_counter() - t0


def time_diff(project: Any, run_a: str, run_b: str) -> tuple[float, Any]:
    from fdbuild.diff.runs import diff_runs

    t0 = time.perf_counter()
    result = diff_runs(project, run_a, run_b)
    return time.perf_counter() - t0, result


def measure(project_dir: Path, ids: list[str], repeats: int) -> list[dict[str, Any]]:
    from fdbuild.project import Project
    from fdbuild.runs import read_run

    project = Project(project_dir)
    out = []
    for label, (run_a, run_b) in (
        ("template edit", (ids[0], ids[1])),
        ("keep change", (ids[1], ids[2])),
    ):
        a, b = read_run(project, run_a), read_run(project, run_b)
        floor(project, a, b, "kept")  # warm the page cache for both sides alike
        time_diff(project, run_a, run_b)
        floors = [floor(project, a, b, "kept") for _ in range(repeats)]
        runs = [time_diff(project, run_a, run_b) for _ in range(repeats)]
        rows = runs[-1][1].rows[0]
        out.append(
            {
                "pair": label,
                "rows_a": rows.rows_a,
                "rows_b": rows.rows_b,
                "changed": rows.changed,
                "flips": (rows.kept_to_dropped or 0) + (rows.dropped_to_kept or 0),
                "floor_s": median(floors),
                "diff_s": median([t for t, _ in runs]),
            }
        )
        out[-1]["ratio"] = out[-1]["diff_s"] / out[-1]["floor_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10k rows, 3 repeats")
    parser.add_argument("--reuse", action="store_true", help="reuse the builds of an earlier run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args(argv)
    rows, repeats = (10_000, 3) if args.quick else (args.rows, args.repeats)
    project = WORK / f"diff-{rows}"
    marker = project / "runs.json"
    if args.reuse and marker.exists():
        ids = json.loads(marker.read_text())
    else:
        print(f"building {rows} rows three times in-process ...", flush=True)
        ids = build_runs(project, rows)
        marker.write_text(json.dumps(ids))
    results = measure(project, ids, repeats)
    print(f"\nfdbuild diff, {rows} source rows; {machine()}")
    print(
        table(
            ("pair", "rows A", "rows B", "changed", "flips", "read both (s)", "diff (s)", "ratio"),
            [
                (
                    r["pair"],
                    r["rows_a"],
                    r["rows_b"],
                    r["changed"],
                    r["flips"],
                    f"{r['floor_s']:.3f}",
                    f"{r['diff_s']:.3f}",
                    f"{r['ratio']:.2f}x",
                )
                for r in results
            ],
        )
    )
    worst = max(r["ratio"] for r in results)
    print(
        f"\nworst ratio {worst:.2f}x (target < {TARGET_RATIO:.0f}x): {'ok' if worst < TARGET_RATIO else 'MISSED'}"
    )
    if args.json:
        print(json.dumps(results, indent=2))
    return 0 if worst < TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
