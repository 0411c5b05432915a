"""``fdbuild diff`` end to end: a scripted sequence of builds against the test server
(template edit, keep change, digest change, rows appended, teacher swap), snapshots of
the rendered diffs, and the acceptance facts of issue 4 asserted one by one.

Snapshots are taken after ``freeze_runs`` rewrites the run records: run ids become
``20260101T00000NZ-run00N`` (N = build number), timestamps follow them, and every
duration is a constant, so only content-derived values (texts, counts, digests,
tokens) reach the snapshot.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.ollama_server import DEFAULT_DIGEST, DEFAULT_MODEL, FakeOllama
from tests.support.project import ProjectDir, questions_jsonl
from tests.support.scripted import (
    NEW_DIGEST,
    STEPS,
    STUDENT,
    STUDENT_DIGEST,
    TEMPLATE_2,
    run_id,
    scripted_target,
)


def diff(project: ProjectDir, n_a: int, n_b: int, *args: str, expect: int = 0) -> Any:
    return project.cli("diff", run_id(n_a), run_id(n_b), *args, expect=expect)


# --------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("step", range(2, len(STEPS) + 1), ids=STEPS[1:])
def test_diff_text_snapshot(scripted: ProjectDir, snapshot: Any, step: int) -> None:
    assert diff(scripted, step - 1, step).stdout == snapshot


def test_diff_markdown_snapshot(scripted: ProjectDir, snapshot: Any) -> None:
    assert diff(scripted, 1, 2, "--md").stdout == snapshot


def test_diff_json_snapshot(scripted: ProjectDir, snapshot: Any) -> None:
    assert diff(scripted, 2, 3, "--json").json() == snapshot


# --------------------------------------------------------------------------- acceptance


def test_template_edit_shows_unified_diff_reason_metrics_and_rows(scripted: ProjectDir) -> None:
    out = scripted.cli("diff", "@~5", "@~4").stdout  # build 1 -> build 2
    assert "-Question: {question}\n    +Question: {question}" not in out
    assert "    +Think step by step, then answer." in out
    assert "--- A/answers.template" in out and "+++ B/answers.template" in out
    answers = next(
        line for line in out.splitlines() if line.strip().startswith("answers  generate")
    )
    assert "rebuilt" in answers and "rendered prompt changed" in answers
    assert "prompt tokens" in out and "pass rate checked" in out
    data = diff(scripted, 1, 2, "--json").json()
    rows = data["rows"][0]
    assert rows["node"] == "kept"
    assert rows["changed"] + rows["kept_to_dropped"] + rows["dropped_to_kept"] > 0
    changed = [e for e in rows["examples"] if e["field"] == "completion"]
    assert changed and all(e["before"] != e["after"] for e in changed)
    assert {m["metric"] for m in data["metrics"]} >= {
        "rows kept",
        "keep rate export",
        "pass rate checked",
        "prompt tokens",
        "completion tokens",
        "teacher calls",
        "wall time",
        "tokens/s answers",
    }


def test_keep_change_recomputes_no_generation_and_lists_flips(scripted: ProjectDir) -> None:
    data = diff(scripted, 2, 3, "--json").json()
    assert data["recomputed"]["generations"] == 0
    assert data["recomputed"]["teacher_calls"] == 0
    assert data["recomputed"]["evaluations"] == 0
    assert [n["node"] for n in data["nodes"] if n["kind"] == "generate"] == []
    keep = [p for p in data["parameters"] if p["scope"] == "checked"]
    assert keep == [
        {
            "scope": "checked",
            "name": "keep.rule_reason",
            "before": "ok",
            "after": {"in": ["ok", "too_short"]},
            "text_diff": None,
        }
    ]
    gate = next(n for n in data["nodes"] if n["node"] == "checked")
    assert gate["computed"] == 0 and gate["cached"] == 12
    assert any("keep rule changed" in r for r in gate["reasons"])
    rows = data["rows"][0]
    assert rows["dropped_to_kept"] > 0 and rows["kept_to_dropped"] == 0
    assert rows["added"] == rows["removed"] == rows["changed"] == 0
    flips = [e for e in rows["examples"] if e["change"] == "dropped->kept"]
    assert flips and all(e["gate"] == "checked" and e["field"] == "verdict" for e in flips)
    assert all("rule_reason=too_short" in e["detail"] for e in flips)


def test_digest_change_names_both_digests(scripted: ProjectDir) -> None:
    out = diff(scripted, 3, 4).stdout
    assert DEFAULT_DIGEST in out and NEW_DIGEST in out
    params = diff(scripted, 3, 4, "--json").json()["parameters"]
    digest = next(p for p in params if p["name"] == "teachers.main.digest")
    assert (digest["before"], digest["after"]) == (DEFAULT_DIGEST, NEW_DIGEST)
    reasons = next(
        n for n in diff(scripted, 3, 4, "--json").json()["nodes"] if n["node"] == "answers"
    )
    assert reasons["reasons"] == [
        f"teacher changed: digest {DEFAULT_DIGEST[:12]} -> {NEW_DIGEST[:12]}"
    ]


def test_rows_appended_are_added_rows(scripted: ProjectDir) -> None:
    data = diff(scripted, 4, 5, "--json").json()
    source = next(p for p in data["parameters"] if p["scope"] == "questions")
    assert source["name"] == "file_digest"
    answers = next(n for n in data["nodes"] if n["node"] == "answers")
    assert answers["computed"] == 6 and answers["cached"] == 12
    rows = data["rows"][0]
    assert rows["removed"] == rows["changed"] == 0
    assert rows["added"] > 0 and rows["rows_b"] - rows["rows_a"] == rows["added"]
    assert all(e["row_id"].startswith(("t006", "t007", "t008")) for e in rows["examples"])


def test_teacher_swap_names_old_and_new_model_and_the_override(scripted: ProjectDir) -> None:
    data = diff(scripted, 5, 6, "--json").json()
    by_name = {p["name"]: p for p in data["parameters"] if p["scope"] == "run"}
    assert (by_name["teachers.main.model"]["before"], by_name["teachers.main.model"]["after"]) == (
        DEFAULT_MODEL,
        STUDENT,
    )
    assert by_name["teachers.main.digest"]["after"] == STUDENT_DIGEST
    assert by_name["--set"]["after"] == ["teachers.main.model=student-v1"]
    assert data["b"]["teachers"] == f"{STUDENT}@{STUDENT_DIGEST[:12]}"


def test_json_and_markdown_carry_the_same_facts(scripted: ProjectDir) -> None:
    data = diff(scripted, 1, 2, "--json").json()
    assert set(data) == {
        "a",
        "b",
        "parameters",
        "nodes",
        "unchanged_nodes",
        "recomputed",
        "metrics",
        "rows",
        "notes",
    }
    md = diff(scripted, 1, 2, "--md").stdout
    assert "| metric | A | B | change |" in md and "|---|---|---|---|" in md
    assert "```diff" in md and "+Think step by step, then answer." in md
    assert "| node | kind | status | cached | computed | teacher calls | why |" in md
    assert "| id | change | field | before (A) | after (B) | gate |" in md
    for metric in data["metrics"]:
        assert f"| {metric['metric']} |" in md
    for node in data["nodes"]:
        assert f"| {node['node']} | {node['kind']} | {node['status']} |" in md


def test_same_run_has_no_differences(scripted: ProjectDir) -> None:
    data = diff(scripted, 3, 3, "--json").json()
    assert data["parameters"] == [] and data["nodes"] == []
    assert data["rows"][0]["unchanged"] == data["rows"][0]["rows_a"]


def test_rows_option_and_node_option(scripted: ProjectDir) -> None:
    none = diff(scripted, 1, 2, "--rows", "0", "--json").json()["rows"][0]
    assert none["examples"] == [] and none["changed"] is not None
    many = diff(scripted, 1, 2, "--rows", "50", "--json").json()["rows"][0]
    total = sum(
        many[k] for k in ("added", "removed", "changed", "kept_to_dropped", "dropped_to_kept")
    )
    assert len(many["examples"]) == total
    answers = diff(scripted, 1, 2, "--node", "answers", "--json").json()["rows"]
    assert [r["node"] for r in answers] == ["answers"]
    assert answers[0]["changed"] == 12 and answers[0]["kept_to_dropped"] == 0
    gate = diff(scripted, 2, 3, "--node", "checked", "--json").json()["rows"][0]
    assert gate["dropped_to_kept"] > 0 and gate["rows_a"] == gate["rows_b"] == 12
    via = diff(scripted, 1, 2, "--node", "export", "--json").json()["rows"][0]
    assert (via["node"], via["via"]) == ("kept", "export")
    field = diff(scripted, 4, 5, "--node", "questions", "--field", "question", "--json").json()[
        "rows"
    ][0]
    assert field["fields"] == ["question"] and field["added"] == 3


def test_default_names_compare_latest_with_parent(scripted: ProjectDir) -> None:
    assert scripted.cli("diff").stdout == diff(scripted, 5, 6).stdout
    assert scripted.cli("diff", run_id(5)[:-1]).stdout == diff(scripted, 5, 6).stdout
    assert scripted.cli("diff", "basic@~1", "basic.yaml@").stdout == diff(scripted, 5, 6).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("nosuchrun", "@"),
            "no run named 'nosuchrun'; recent runs: 20260101T000006Z-run006 (basic)",
        ),
        (("2026", "@"), "run prefix '2026' is ambiguous: it matches 6 runs"),
        (("@~9", "@"), "target 'basic' has only 6 run(s) in its chain"),
        (("other@", "@"), "no runs of target 'other' in fdbuild.lock (targets: basic@)"),
        (("@~1", "@", "--node", "nope"), "--node 'nope': no such node in either run"),
        (("@~1", "@", "--field", "nope"), "--field nope: no such column"),
        (("@~1", "@", "--rows", "-1"), "--rows -1"),
    ],
)
def test_bad_names_exit_2_listing_candidates(
    scripted: ProjectDir, args: tuple[str, ...], message: str
) -> None:
    result = scripted.cli("diff", *args, expect=2)
    assert message in result.stderr


# --------------------------------------------------------------------------- other projects


def test_diff_across_targets_matches_nodes_by_name(
    project: ProjectDir, ollama_server: FakeOllama
) -> None:
    """A born-again iteration lives in its own target file; diff still pairs its nodes."""
    url = ollama_server.url
    project.gen(
        {
            "data/questions.jsonl": questions_jsonl(4),
            "basic.yaml": scripted_target(url),
            "again.yaml": scripted_target(url, template=TEMPLATE_2).replace(
                "name: basic", "name: again"
            ),
        }
    )
    project.build("basic.yaml")
    project.build("again.yaml")
    data = project.cli("diff", "basic@", "again@", "--json").json()
    assert (data["a"]["target"], data["b"]["target"]) == ("basic", "again")
    names = {(p["scope"], p["name"]) for p in data["parameters"]}
    assert {("run", "target"), ("run", "file"), ("answers", "template")} <= names
    assert data["rows"][0]["node"] == "kept" and data["rows"][0]["rows_a"] is not None
    ambiguous = project.cli("diff", "@~1", "@", expect=2)
    assert "has 2 targets; write TARGET@~1 with one of: again@, basic@" in ambiguous.stderr


def test_missing_artifacts_are_a_note_not_an_error(
    project: ProjectDir, ollama_server: FakeOllama
) -> None:
    url = ollama_server.url
    project.gen({"data/questions.jsonl": questions_jsonl(4), "basic.yaml": scripted_target(url)})
    project.build("basic.yaml")
    project.gen({"basic.yaml": scripted_target(url, template=TEMPLATE_2)})
    project.build("basic.yaml")
    shutil.rmtree(project.root / ".fdbuild" / "objects")
    out = project.cli("diff", "@~1", "@").stdout
    assert "note: no rows for 'kept' in run" in out
    assert "answers template:" in out and "Metrics" in out


def test_no_percent_change_of_times_against_a_no_op_or_offline_run(
    project: ProjectDir, ollama_server: FakeOllama
) -> None:
    """Issue 10: ``wall time 0.01s 124.94s +124.93s (+892357%)``; a no-op's or an offline
    run's time is cache reads, so the ratio is left out and a footnote says why, once."""
    url = ollama_server.url
    project.gen({"data/questions.jsonl": questions_jsonl(4), "basic.yaml": scripted_target(url)})
    project.build("basic.yaml")
    project.build("basic.yaml")  # a no-op
    project.gen({"basic.yaml": scripted_target(url, template=TEMPLATE_2)})
    project.build("basic.yaml")  # real work again, against the no-op
    project.build("basic.yaml", "--offline")
    for names, side, kind in (
        (("@~3", "@~2"), "B", "a no-op"),
        (("@~2", "@~1"), "A", "a no-op"),
        (("@~1", "@"), "B", "an offline"),
    ):
        out = project.cli("diff", *names, "--no-rows").stdout
        (wall,) = [line for line in out.splitlines() if line.strip().startswith("wall time")]
        assert "%" not in wall, (names, wall)
        footnote = f"no % change for wall time ({side} is {kind} run: its time measures cache reads"
        assert out.count("no % change for") == 1 and footnote in out, names
        metrics = project.cli("diff", *names, "--json").json()["metrics"]
        (wall_json,) = [m for m in metrics if m["metric"] == "wall time"]
        assert wall_json["percent_omitted"].startswith(f"{side} is {kind} run")
        rows = [m for m in metrics if m["metric"] == "rows answers"]
        assert rows[0]["percent_omitted"] is None  # counts keep their percentages


def test_library_diff_runs(scripted: ProjectDir) -> None:
    from fdbuild.diff.runs import DiffOptions, diff_runs
    from fdbuild.project import Project

    result = diff_runs(Project(Path(scripted.root)), run_id(2), run_id(3), DiffOptions(examples=1))
    assert result.summary["generations"] == 0
    assert len(result.rows[0].examples) == 1


# --------------------------------------------------------------------------- pure parts


def test_node_order_puts_a_pass_through_select_after_its_gate() -> None:
    from fdbuild.records import export_inputs, node_order

    def node(kind: str, inputs: list[str], out: str) -> dict[str, Any]:
        return {"kind": kind, "input_digests": inputs, "output": {"digest": out, "rows": 1}}

    record = {
        "nodes": {
            "export": node("export", ["d3"], "file"),
            "kept": node("select", ["d3"], "d3"),  # keeps every row: same digest as its gate
            "checked": node("gate", ["d2"], "d3"),
            "answers": node("generate", ["d1"], "d2"),
            "questions": node("source", [], "d1"),
        }
    }
    assert node_order(record) == ["questions", "answers", "checked", "kept", "export"]
    assert export_inputs(record) == ["kept"]


def test_side_by_side_shows_where_long_texts_differ() -> None:
    from fdbuild.render.diff import side_by_side

    before, after = "SELECT * FROM t WHERE a = 1 AND b = 2", "SELECT * FROM t WHERE a = 1 AND b = 3"
    left, right = side_by_side(before, after, 20)
    assert left != right and left.startswith("...") and left.endswith("2")
    assert side_by_side(None, "x", 20) == ("-", "x")


texts = st.sampled_from(["alpha", "beta", "gamma"])
rows_st = st.dictionaries(
    st.integers(0, 30).map(lambda i: f"r{i:02d}"), st.tuples(texts, st.booleans()), max_size=25
)


@settings(max_examples=60, deadline=None)
@given(rows_a=rows_st, rows_b=rows_st)
def test_row_buckets_partition_the_rows(rows_a: dict[str, Any], rows_b: dict[str, Any]) -> None:
    """Whatever the two runs hold, every row lands in exactly one bucket, as defined."""
    import tempfile

    from fdbuild.diff.rows import diff_node_rows
    from fdbuild.store.objects import ArtifactStore

    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(Path(tmp))
        records = [_gated_record(store, rows) for rows in (rows_a, rows_b)]
        got = diff_node_rows(store, records[0], records[1], "kept", examples=100)
    kept_a = {i for i, (_, ok) in rows_a.items() if ok}
    kept_b = {i for i, (_, ok) in rows_b.items() if ok}
    both = set(rows_a) & set(rows_b)
    flips = {i for i in both if rows_a[i][1] != rows_b[i][1]}
    same = kept_a & kept_b
    expected = {
        "added": len(kept_b - kept_a - flips),
        "removed": len(kept_a - kept_b - flips),
        "changed": sum(rows_a[i][0] != rows_b[i][0] for i in same),
        "unchanged": sum(rows_a[i][0] == rows_b[i][0] for i in same),
        "kept_to_dropped": sum(rows_a[i][1] for i in flips),
        "dropped_to_kept": sum(rows_b[i][1] for i in flips),
    }
    assert {k: getattr(got, k) for k in expected} == expected
    shown = {e.row_id for e in got.examples}
    assert len(shown) == len(got.examples) == sum(expected.values()) - expected["unchanged"]


def _gated_record(store: Any, rows: dict[str, tuple[str, bool]]) -> dict[str, Any]:
    """A run record whose gate ``checked`` holds ``rows`` and whose select keeps the passes."""
    import pyarrow as pa

    schema = pa.schema(
        [("_id", pa.string()), ("completion", pa.string()), ("_pass_checked", pa.bool_())]
    )
    digests = []
    for subset in (rows, {i: v for i, v in rows.items() if v[1]}):
        writer = store.writer(schema)
        for row_id, (text, ok) in sorted(subset.items()):
            writer.write({"_id": row_id, "completion": text, "_pass_checked": ok})
        digests.append(writer.finish()[0])
    recipe = {"kind": "gate", "keep": {"ok": True}, "prefix": None}
    return {
        "run_id": "r",
        "nodes": {
            "checked": {
                "kind": "gate",
                "recipe": recipe,
                "input_digests": ["in"],
                "output": {"digest": digests[0], "rows": len(rows)},
            },
            "kept": {
                "kind": "select",
                "recipe": {},
                "input_digests": [digests[0]],
                "output": {"digest": digests[1], "rows": sum(v[1] for v in rows.values())},
            },
        },
    }


def test_a_damaged_artifact_is_a_clear_error_not_wrong_rows(
    project: ProjectDir, ollama_server: FakeOllama
) -> None:
    url = ollama_server.url
    project.gen({"data/questions.jsonl": questions_jsonl(4), "basic.yaml": scripted_target(url)})
    project.build("basic.yaml")
    project.gen({"basic.yaml": scripted_target(url, template=TEMPLATE_2)})
    project.build("basic.yaml")
    for artifact in (project.root / ".fdbuild" / "objects").glob("*/*.parquet"):
        data = bytearray(artifact.read_bytes())
        middle = len(data) // 2
        data[middle : middle + 4] = b"\xff\x00\xff\x00"
        artifact.write_bytes(bytes(data))
    res = project.cli("diff", "@~1", "@", expect=1)
    assert "is damaged" in res.stderr and "fdbuild doctor --repair" in res.stderr
    assert "Traceback" not in res.stderr
