"""``compare`` nodes: how far two nodes' verdicts and scores agree (teacher vs student).

The two inputs (``a`` and ``b``) are joined by a key: ``on: id`` joins on ``_id``, which
after a generate node is ``<row>/<k>`` (same source row, same candidate index: a teacher
and a student run with ``n: 1`` both give ``<row>/0``); ``on: parent`` joins on
``_parent``, the source row, for sides with different candidate ids (a vote's pick
against a greedy student). A key seen more than once on one side joins its first row
(the side's order) and is counted in ``duplicates_a``/``duplicates_b``; a key on one
side only is counted (``only_a``/``only_b``), never joined.

Figures (fdbuild/agreement.py), per gate compared: each side's pass rate on the joined
rows and on all its rows, agreement, Cohen's kappa and the 2x2 table; per score column:
MAE, RMSE, Pearson, Spearman. Each with the n it rests on. They go to the node's
``stats.compare`` and the run record's ``reports.compare.<node>``.

The output is one row per joined pair (``_id`` = the key, both sides' ids, verdicts,
scores and completions), so the node is an artifact like any other: digest, memo and
early cutoff apply, and no teacher is ever called (its inputs come from the cache).
"""

from __future__ import annotations

from typing import Any

from fdbuild import columns as C
from fdbuild.agreement import pass_rate, score_agreement, verdict_agreement
from fdbuild.execute.context import NodeStats
from fdbuild.nodes.base import WholeInputKind
from fdbuild.spec.graph import GraphNode, compare_columns


def compare_recipe(node: GraphNode) -> dict[str, Any]:
    gates, scores = _plan(node)
    return {"kind": "compare", "on": node.spec.on, "gates": gates, "scores": scores}


def _plan(node: GraphNode) -> tuple[list[str], list[str]]:
    """The gates and scores the graph resolved (they are in the node's columns)."""
    gates = [c[len("a_pass_") :] for c in node.columns if c.startswith("a_pass_")]
    scores = [
        c[len("a_") :]
        for c in node.columns
        if c.startswith("a_") and not c.startswith("a_pass_") and c not in ("a_id",)
    ]
    return gates, [s for s in scores if s != C.COMPLETION]


def _index(
    rows: list[dict[str, Any]], key: str
) -> tuple[dict[Any, dict[str, Any]], list[Any], int]:
    """Rows by join key (the first of each key), the keys in order, and duplicates."""
    by_key: dict[Any, dict[str, Any]] = {}
    order: list[Any] = []
    duplicates = 0
    for row in rows:
        k = row.get(key)
        if k in by_key:
            duplicates += 1
            continue
        by_key[k] = row
        order.append(k)
    return by_key, order, duplicates


def figures(
    a_rows: list[dict[str, Any]],
    b_rows: list[dict[str, Any]],
    key: str,
    gates: list[str],
    scores: list[str],
) -> tuple[dict[str, Any], list[tuple[dict[str, Any], dict[str, Any]]]]:
    """The compare figures and the joined pairs (in a's order)."""
    a_by, a_order, a_dup = _index(a_rows, key)
    b_by, _, b_dup = _index(b_rows, key)
    joined = [(a_by[k], b_by[k]) for k in a_order if k in b_by]
    out: dict[str, Any] = {
        "on": key,
        "rows_a": len(a_rows),
        "rows_b": len(b_rows),
        "joined": len(joined),
        "only_a": sum(1 for k in a_by if k not in b_by),
        "only_b": sum(1 for k in b_by if k not in a_by),
        "duplicates_a": a_dup,
        "duplicates_b": b_dup,
        "gates": {},
        "scores": {},
    }
    for gate in gates:
        col = C.pass_col(gate)
        fig = verdict_agreement([x.get(col) for x, _ in joined], [y.get(col) for _, y in joined])
        rate_a, n_a = pass_rate([r.get(col) for r in a_by.values()])
        rate_b, n_b = pass_rate([r.get(col) for r in b_by.values()])
        fig.update(
            {"pass_rate_a_all": rate_a, "n_a_all": n_a, "pass_rate_b_all": rate_b, "n_b_all": n_b}
        )
        out["gates"][gate] = fig
    for col in scores:
        out["scores"][col] = score_agreement(
            [_num(x.get(col)) for x, _ in joined], [_num(y.get(col)) for _, y in joined]
        )
    return out, joined


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def run_compare(build: Any, node: GraphNode, digests: list[str | None], stats: NodeStats) -> Any:
    import pyarrow as pa

    a_digest, b_digest = digests
    assert a_digest is not None and b_digest is not None  # compare never reads an export
    gates, scores = _plan(node)
    key = C.ID if node.spec.on == "id" else C.PARENT
    a_rows = list(build.outputs.rows(a_digest))
    b_rows = list(build.outputs.rows(b_digest))
    stats.rows_in = len(a_rows) + len(b_rows)
    stats.computed = stats.rows_in
    result, joined = figures(a_rows, b_rows, key, gates, scores)
    stats.extra["compare"] = result
    text = f"a_{C.COMPLETION}" in node.columns
    types: dict[str, pa.DataType] = {C.ID: pa.string(), "a_id": pa.string(), "b_id": pa.string()}
    for gate in gates:
        types[f"a_pass_{gate}"] = types[f"b_pass_{gate}"] = pa.bool_()
    for col in scores:
        types[f"a_{col}"] = types[f"b_{col}"] = pa.float64()
    if text:
        types[f"a_{C.COMPLETION}"] = types[f"b_{C.COMPLETION}"] = pa.string()
    names = compare_columns(gates, scores, text)
    writer = build.outputs.writer(pa.schema([(n, types[n]) for n in names]))
    for x, y in joined:
        row: dict[str, Any] = {C.ID: str(x.get(key)), "a_id": x.get(C.ID), "b_id": y.get(C.ID)}
        for gate in gates:
            row[f"a_pass_{gate}"] = x.get(C.pass_col(gate))
            row[f"b_pass_{gate}"] = y.get(C.pass_col(gate))
        for col in scores:
            row[f"a_{col}"] = _num(x.get(col))
            row[f"b_{col}"] = _num(y.get(col))
        if text:
            row[f"a_{C.COMPLETION}"] = x.get(C.COMPLETION)
            row[f"b_{C.COMPLETION}"] = y.get(C.COMPLETION)
        writer.write(row)
    return writer


class CompareKind(WholeInputKind):
    name = "compare"

    async def recipe(self, build: Any, node: GraphNode) -> dict[str, Any]:
        return compare_recipe(node)

    def compute(
        self, build: Any, node: GraphNode, digests: list[str | None], stats: NodeStats
    ) -> Any:
        return run_compare(build, node, digests, stats)
