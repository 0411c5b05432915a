"""``require:`` quality bars: a target's figures checked after its build.

A bar names a node of the target, one of its figures and a bound::

    require:
      - {node: executed, figure: gold_match_rate, min: 0.3}
      - {node: kept, figure: rows, min: 100}
      - {node: cmp, figure: executed.kappa, min: 0.4}

Figures come from the run record (so ``fdbuild show`` and the report see the same
numbers): every node's ``rows`` (output rows), ``rows_in``, ``failed`` and
``teacher_calls``; a gate's quality report (``pass_rate``, ``kept``, ``evaluated``,
``<bool output>_rate``, ``<number output>_mean/_p50/_p10``); a vote's and a pairs
node's counts; a compare node's ``joined``, ``only_a``, ... and ``GATE.<figure>`` /
``SCORE.<figure>`` (fdbuild/nodes/compare.py). Which figures a node has is known from
the graph, so an unknown node or figure fails at load (exit 2, naming the line and
the figures there are). A figure that is undefined in this run (``None``: no rows, zero
variance) misses its bar: a bar nobody measured is not met.

A build that misses a bar finishes its work and writes its run record (``require``
lists every bar with its value); ``fdbuild build`` then exits 6 (3 wins when rows also
failed: the figures rest on an incomplete build, and the rows are retried next time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fdbuild.errors import SpecError

if TYPE_CHECKING:
    from fdbuild.spec.graph import Graph, GraphNode

EXIT_MISSED = 6

COMMON = ("rows", "rows_in", "failed", "teacher_calls")
GATE = ("pass_rate", "kept", "evaluated")
VOTE = ("inputs", "picked", "no_voters", "ties", "below_share", "mean_share")
PAIRS = ("inputs", "pairs", "single", "no_chosen", "ties", "below_margin")
COMPARE = ("rows_a", "rows_b", "joined", "only_a", "only_b", "duplicates_a", "duplicates_b")
COMPARE_GATE = (
    "n",
    "pass_rate_a",
    "pass_rate_b",
    "agreement",
    "kappa",
    "both_pass",
    "a_only",
    "b_only",
    "both_fail",
    "flips",
    "pass_rate_a_all",
    "pass_rate_b_all",
    "n_a_all",
    "n_b_all",
)
COMPARE_SCORE = ("n", "mean_a", "mean_b", "mae", "rmse", "pearson", "spearman")


def known_figures(node: GraphNode) -> list[str]:
    """Every figure a bar may name on ``node``, from its kind and the graph."""
    names = list(COMMON)
    kind = node.kind
    if kind == "gate" and node.check is not None:
        names += GATE
        for out, typ in node.check.outputs.items():
            if typ == "bool":
                names.append(f"{out}_rate")
            elif typ == "double":
                names += [f"{out}_mean", f"{out}_p50", f"{out}_p10"]
    elif kind == "vote":
        names += VOTE
    elif kind == "pairs":
        names += PAIRS
    elif kind == "compare":
        names += COMPARE
        for col in node.columns:
            if col.startswith("a_pass_"):
                names += [f"{col[len('a_pass_') :]}.{f}" for f in COMPARE_GATE]
        from fdbuild.nodes.compare import _plan

        for score in _plan(node)[1]:
            names += [f"{score}.{f}" for f in COMPARE_SCORE]
    return names


def check_requires(graph: Graph) -> None:
    """Load-time check of every root target's bars: the node exists, the figure is one
    it has."""
    from fdbuild.spec.graph import NodeRef

    for name in graph.roots:
        target = graph.targets[name]
        for i, bar in enumerate(target.spec.require):
            ref = NodeRef(name, bar.node)
            if ref not in graph.nodes:
                raise SpecError(
                    f"{target.where('require', i, 'node')}: require[{i}].node: '{bar.node}' is "
                    f"not a node of {target.path.name} (nodes: {', '.join(target.spec.nodes)})"
                )
            figures = known_figures(graph.nodes[ref])
            if bar.figure not in figures:
                raise SpecError(
                    f"{target.where('require', i, 'figure')}: require[{i}].figure: node "
                    f"'{bar.node}' ({graph.nodes[ref].kind}) has no figure '{bar.figure}' "
                    f"(figures: {', '.join(figures)})"
                )


def node_figures(record: dict[str, Any], name: str) -> dict[str, Any]:
    """A node's figures, flat, from a run record."""
    node = record["nodes"][name]
    stats = node.get("stats") or {}
    out: dict[str, Any] = {
        "rows": node["output"]["rows"],
        "rows_in": stats.get("rows_in"),
        "failed": stats.get("failed"),
        "teacher_calls": stats.get("teacher_calls"),
    }
    if node["kind"] == "gate":
        quality = (record.get("reports") or {}).get("quality", {}).get(name) or {}
        out.update({k: v for k, v in quality.items() if not isinstance(v, dict)})
    for section in ("vote", "pairs"):
        if node["kind"] == section:
            out.update(stats.get(section) or {})
    if node["kind"] == "compare":
        cmp = stats.get("compare") or {}
        out.update({k: v for k, v in cmp.items() if not isinstance(v, dict)})
        for group in ("gates", "scores"):
            for sub, figs in (cmp.get(group) or {}).items():
                out.update({f"{sub}.{k}": v for k, v in figs.items()})
    return out


def evaluate(record: dict[str, Any], bars: list[Any]) -> list[dict[str, Any]]:
    """Each bound of each bar against the record: {node, figure, op, bar, value, ok, by}.

    ``by`` is how far the value is from the bar (positive: the margin a pass has, negative:
    how much a miss lacks); None when the figure is undefined."""
    results: list[dict[str, Any]] = []
    for bar in bars:
        value = (
            node_figures(record, bar.node).get(bar.figure) if bar.node in record["nodes"] else None
        )
        for op, bound in ((">=", bar.min), ("<=", bar.max)):
            if bound is None:
                continue
            number = (
                value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
            )
            if number is None:
                ok, by = False, None
            elif op == ">=":
                ok, by = number >= bound, round(number - bound, 6)
            else:
                ok, by = number <= bound, round(bound - number, 6)
            results.append(
                {
                    "node": bar.node,
                    "figure": bar.figure,
                    "op": op,
                    "bar": bound,
                    "value": number,
                    "ok": ok,
                    "by": by,
                }
            )
    return results


def _fmt(value: float) -> str:
    """Counts as counts (``100``), rates with two decimals (``0.30``), tiny ones as they are."""
    if float(value).is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:.2g}"


def describe(result: dict[str, Any]) -> str:
    """``checked gold_match_rate 0.21 < 0.30 (missed by 0.09)`` or ``... >= 0.30 (ok)``."""
    head = f"{result['node']} {result['figure']}"
    bar = _fmt(result["bar"])
    if result["value"] is None:
        return f"{head} not measured (undefined in this run) {result['op']} {bar}: missed"
    value = _fmt(result["value"])
    if result["ok"]:
        return f"{head} {value} {result['op']} {bar} (ok)"
    failed_op = "<" if result["op"] == ">=" else ">"
    return f"{head} {value} {failed_op} {bar} (missed by {_fmt(abs(result['by']))})"


def missed(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in record.get("require") or [] if not r.get("ok")]
