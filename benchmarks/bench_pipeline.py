"""Benchmark "pipeline" of issue 11: generate -> judge, overlapped or one after the other.

Two Ollama-protocol test servers in their own processes (``benchmarks/_server.py``),
100 ms latency each (``--jitter``, default 0: the issue's figure), one answering the
generations, one judging (it replies ``Score: N/10``). Each teacher has ``concurrency: 8``.
A target ``source (800 rows) -> generate (n: 1, teacher gen) -> gate (check: judge,
teacher judge) -> jsonl export`` is built cold by the real CLI. Each phase alone, same
round, same servers:

* **generate alone**: ``source -> generate -> export``, cold;
* **judge alone**: its export as the source (the same completions, so the same judge
  prompts) ``-> gate (judge) -> export``, cold.

Reported: the build's wall time (fork to reap of ``fdbuild build``) against the sum of
the two alone, target <= 0.6 (a walk that runs one node after the other is ~1.0; a
perfect overlap 0.5 plus the tail of the last chunk). Each side pays the CLI's start-up;
the sum pays it twice, so the ratio is also given with one start-up
(``fdbuild --version``, measured in the round) added to the build side, and with one
build's whole fixed cost (the same build again, a no-op: start-up, imports, identity
lookups, lock and run record) added.

And **distilabel 1.5.3** running the same generate-then-judge pipeline on the same
servers (``benchmarks/_distilabel_pipeline.py``, batches of 8 = 8 in flight), in its own
virtualenv, given by ``--distilabel-python`` (default
``/work/bench/distilabel-venv/bin/python``; how to make one: benchmarks/README.md). Its
wall time from ``pipeline.run`` to its return (its imports excluded) against fdbuild's.

    python benchmarks/bench_pipeline.py                    # 800 rows, 3 rounds
    python benchmarks/bench_pipeline.py --quick            # 200 rows, 1 round
    python benchmarks/bench_pipeline.py --no-distilabel
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    MODEL,
    REPO,
    WORK,
    fdbuild_exe,
    load,
    machine,
    median,
    table,
)
from _scale import (  # noqa: E402
    BENCH,
    Server,
    count_lines,
    env,
    new_project,
    run_build,
    teacher_yaml,
    use_code,
    write_questions,
)

TARGET_RATIO = 0.6
DEFAULT_DISTILABEL = Path("/work/bench/distilabel-venv/bin/python")

GENERATE = """  answers:
    kind: generate
    input: questions
    teacher: gen
    system: You write SQLite SQL. Return SQL only.
    template: "Question: {question}\\nSQL:"
    decode: {temperature: 0.2, top_p: 0.95, seed: 7, num_predict: 128}
"""
JUDGE = """  judged:
    kind: gate
    input: %s
    check: judge
    params:
      teacher: judge
      template: |
        Question: {question}
        Candidate SQL: {completion}
        How well does the candidate answer the question? Reply 'Score: N/10'.
"""
EXPORT = """  export:
    kind: export
    input: %s
    format: jsonl
    path: out/rows.jsonl
"""


def target(kind: str, gen_url: str, judge_url: str, concurrency: int) -> str:
    head = "fdbuild: 1\nname: pipe\nteachers:\n"
    if kind in ("both", "generate"):
        head += teacher_yaml("gen", [gen_url], concurrency=concurrency)
    if kind in ("both", "judge"):
        head += teacher_yaml("judge", [judge_url], concurrency=concurrency)
    source = "data/answered.jsonl" if kind == "judge" else "data/questions.jsonl"
    nodes = f"nodes:\n  questions:\n    kind: source\n    path: {source}\n    id: task_id\n"
    if kind == "generate":
        nodes += GENERATE + EXPORT % "answers"
    elif kind == "judge":
        nodes += JUDGE % "questions" + EXPORT % "judged"
    else:
        nodes += GENERATE + JUDGE % "answers" + EXPORT % "judged"
    return head + nodes


def project(name: str, kind: str, rows: int, urls: tuple[str, str], conc: int) -> Path:
    directory = new_project(WORK / name)
    if kind != "judge":
        write_questions(directory, rows)
    path = directory / "pipe.yaml"
    path.write_text(target(kind, *urls, conc), encoding="utf-8")
    return path


def checked(run: Any, what: str, rows: int) -> float:
    if run.code != 0:
        raise SystemExit(f"{what}: exit {run.code}: {run.stderr[-2000:]}")
    if run.summary.get("failed"):
        raise SystemExit(f"{what}: {run.summary['failed']} rows failed")
    return run.wall_s


def startup() -> float:
    t0 = time.perf_counter()
    subprocess.run([fdbuild_exe(), "--version"], env=env(), capture_output=True, check=True)
    return time.perf_counter() - t0


def distilabel(python: Path, rows: int, urls: tuple[str, str], batch: int) -> dict[str, Any]:
    cache = WORK / "distilabel-cache"
    shutil.rmtree(cache, ignore_errors=True)
    cmd = [
        str(python),
        str(BENCH / "_distilabel_pipeline.py"),
        "--rows",
        str(rows),
        "--gen-host",
        urls[0],
        "--judge-host",
        urls[1],
        "--model",
        MODEL,
        "--batch",
        str(batch),
        "--cache-dir",
        str(cache),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=WORK, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"distilabel failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**out, "process_wall_s": wall}


def one_round(rnd: int, args: argparse.Namespace) -> dict[str, Any]:
    with (
        Server(f"g{rnd}", latency=args.latency, jitter=args.jitter, seed=rnd) as gen,
        Server(
            f"j{rnd}", latency=args.latency, jitter=args.jitter, seed=100 + rnd, judge=True
        ) as jdg,
    ):
        urls = (gen.url, jdg.url)
        out: dict[str, Any] = {"round": rnd, "startup_s": startup()}
        # the two phases alone
        gen_target = project(f"pipe-gen-{rnd}", "generate", args.rows, urls, args.concurrency)
        run = run_build(gen_target)
        out["generate_alone_s"] = checked(run, "generate alone", args.rows)
        out["generate_requests"] = gen.requests
        judge_target = project(f"pipe-judge-{rnd}", "judge", args.rows, urls, args.concurrency)
        (judge_target.parent / "data").mkdir(exist_ok=True)
        shutil.copy(
            gen_target.parent / "out" / "rows.jsonl",
            judge_target.parent / "data" / "answered.jsonl",
        )
        run = run_build(judge_target)
        out["judge_alone_s"] = checked(run, "judge alone", args.rows)
        out["judge_requests"] = jdg.requests
        gen.zero()
        jdg.zero()
        # the chain, one build
        both = project(f"pipe-both-{rnd}", "both", args.rows, urls, args.concurrency)
        run = run_build(both)
        out["pipeline_s"] = checked(run, "pipeline", args.rows)
        out["pipeline_requests"] = (gen.requests, jdg.requests)
        out["pipeline_rows"] = count_lines(both.parent / "out" / "rows.jsonl")
        out["pipeline_max_in_flight"] = (gen.stats()["max_in_flight"], jdg.stats()["max_in_flight"])
        nodes = run.record.get("nodes", {})
        out["node_wall_s"] = {
            n: nodes[n]["stats"].get("wall_s") for n in ("answers", "judged") if n in nodes
        }
        # the fixed cost of a build (start-up, imports, identity lookups, lock, record):
        # the same build again, everything cached; the sum of two builds pays it twice
        again = run_build(both)
        out["noop_s"] = checked(again, "pipeline no-op", args.rows)
        assert again.summary.get("teacher_calls") == 0, again.summary
        assert out["pipeline_rows"] == args.rows, out
        assert out["pipeline_requests"] == (args.rows, args.rows), out
        sum_alone = out["generate_alone_s"] + out["judge_alone_s"]
        out["sum_alone_s"] = sum_alone
        out["ratio"] = out["pipeline_s"] / sum_alone
        out["ratio_one_startup"] = (out["pipeline_s"] + out["startup_s"]) / sum_alone
        out["ratio_one_fixed"] = (out["pipeline_s"] + out["noop_s"]) / sum_alone
        if args.distilabel_python:
            gen.zero()
            jdg.zero()
            d = distilabel(args.distilabel_python, args.rows, urls, args.concurrency)
            d["requests"] = (gen.requests, jdg.requests)
            d["max_in_flight"] = (gen.stats()["max_in_flight"], jdg.stats()["max_in_flight"])
            out["distilabel"] = d
            out["distilabel_vs_fdbuild"] = d["wall_s"] / out["pipeline_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=800)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--latency", type=float, default=0.1)
    p.add_argument("--jitter", type=float, default=0.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="200 rows, 1 round")
    p.add_argument("--distilabel-python", type=Path, default=DEFAULT_DISTILABEL)
    p.add_argument("--no-distilabel", action="store_true")
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument(
        "--rev", default="HEAD", help="fdbuild as committed at REV (default HEAD), or `worktree`"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.repeats = 200, 1
    if args.no_distilabel:
        args.distilabel_python = None
    elif not args.distilabel_python.exists():
        print(f"no distilabel python at {args.distilabel_python}: distilabel not measured")
        args.distilabel_python = None
    json_out = args.json_out or WORK / f"pipeline-results{'-quick' if args.quick else ''}.json"
    WORK.mkdir(parents=True, exist_ok=True)
    code = use_code(args.rev)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(
        f"fdbuild pipeline benchmark, {started}\n{machine()}\n{load()} at the start\nmeasured: fdbuild at {code}"
    )
    print(
        f"{args.rows} generations, each judged; concurrency {args.concurrency} per server, "
        f"latency {args.latency * 1000:.0f} ms +/- {args.jitter:.0%}: each phase alone >= "
        f"{args.rows * args.latency / args.concurrency:.1f} s\n",
        flush=True,
    )
    results = []
    for rnd in range(1, args.repeats + 1):
        r = one_round(rnd, args)
        results.append(r)
        d = r.get("distilabel")
        print(
            f"round {rnd}: generate alone {r['generate_alone_s']:.2f} s + judge alone "
            f"{r['judge_alone_s']:.2f} s = {r['sum_alone_s']:.2f} s; pipeline {r['pipeline_s']:.2f} s "
            f"= {r['ratio']:.3f}"
            + (
                f"; distilabel {d['wall_s']:.2f} s ({r['distilabel_vs_fdbuild']:.2f}x)" if d else ""
            ),
            flush=True,
        )
    rows = [
        [
            r["round"],
            f"{r['generate_alone_s']:.2f}",
            f"{r['judge_alone_s']:.2f}",
            f"{r['sum_alone_s']:.2f}",
            f"{r['pipeline_s']:.2f}",
            f"{r['ratio']:.3f}",
            f"{r['ratio_one_startup']:.3f}",
            f"{r['startup_s'] * 1000:.0f}",
            f"{r['ratio_one_fixed']:.3f}",
            f"{r['noop_s']:.2f}",
            f"{r['distilabel']['wall_s']:.2f}" if "distilabel" in r else "n/a",
            f"{r['distilabel_vs_fdbuild']:.2f}" if "distilabel" in r else "n/a",
        ]
        for r in results
    ]
    keys = [
        "generate_alone_s",
        "judge_alone_s",
        "sum_alone_s",
        "pipeline_s",
        "ratio",
        "ratio_one_startup",
        "startup_s",
        "ratio_one_fixed",
        "noop_s",
    ]
    med = {k: median([r[k] for r in results]) for k in keys}
    if all("distilabel" in r for r in results):
        med["distilabel_s"] = median([r["distilabel"]["wall_s"] for r in results])
        med["distilabel_vs_fdbuild"] = median([r["distilabel_vs_fdbuild"] for r in results])
    rows.append(
        ["median"]
        + [f"{med[k]:.2f}" for k in keys[:4]]
        + [
            f"{med['ratio']:.3f}",
            f"{med['ratio_one_startup']:.3f}",
            f"{med['startup_s'] * 1000:.0f}",
            f"{med['ratio_one_fixed']:.3f}",
            f"{med['noop_s']:.2f}",
        ]
        + (
            [f"{med['distilabel_s']:.2f}", f"{med['distilabel_vs_fdbuild']:.2f}"]
            if "distilabel_s" in med
            else ["n/a", "n/a"]
        )
    )
    print()
    print(
        table(
            [
                "round",
                "generate alone s",
                "judge alone s",
                "sum s",
                "pipeline s",
                "ratio",
                "+1 start-up",
                "start-up ms",
                "+1 no-op",
                "no-op s",
                "distilabel s",
                "distilabel / fdbuild",
            ],
            rows,
        )
    )
    verdict = "met" if med["ratio"] <= TARGET_RATIO else "MISSED"
    print(
        f"\nmedian: the generate -> judge build takes {med['ratio']:.3f} of its two phases run "
        f"alone (target <= {TARGET_RATIO}): {verdict}"
    )
    print(
        f"the sum pays a build's fixed cost twice: with one no-op build ({med['noop_s']:.2f} s) "
        f"added to the chain's build, {med['ratio_one_fixed']:.3f}"
    )
    print(f"node wall times in the pipeline's run record (round 1): {results[0]['node_wall_s']}")
    print(
        f"requests at the servers in the pipeline (gen, judge): {results[0]['pipeline_requests']}, "
        f"max in flight {results[0]['pipeline_max_in_flight']}"
    )
    if "distilabel_s" in med:
        d = results[0]["distilabel"]
        print(
            f"distilabel 1.5.3, same pipeline and servers (batches of {args.concurrency}): "
            f"{med['distilabel_s']:.2f} s = {med['distilabel_vs_fdbuild']:.2f}x fdbuild's build; "
            f"{d['rows']} rows, {d['judged']} judged, requests {d['requests']}, max in flight "
            f"{d['max_in_flight']}, its imports {d['import_s']:.2f} s (not counted)"
        )
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
    }
    json_out.write_text(json.dumps(payload, indent=2))
    print(f"results: {json_out.relative_to(REPO) if json_out.is_relative_to(REPO) else json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
