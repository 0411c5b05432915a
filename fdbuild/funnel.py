"""The funnel of a run: how many candidates each step of a generate chain let through.

For every export fed by a ``generate`` node, the chain from that node to the export is
walked in data-flow order and each step counts the candidates that survived it and
every step before it:

    asked -> [replied] -> [parsed] -> <one stage per gate> -> [voted | pairs] -> exported

- ``asked``: input rows x ``n`` x profiles, what the generate node requested;
- ``replied``: shown only when some requests failed;
- ``parsed``: with ``parse:`` other than ``none``, the replies without a ``parse_error``;
- a gate is one stage labelled by its check (``valid SQL``, ``executes``, ...) and
  counts the rows its ``keep`` rule passes. A gold comparison in ``keep``
  (``gold_match``) is split off as its own ``matches gold`` stage after the gate's other
  conditions, since "runs" and "is right" are the two numbers a reader wants;
- a ``select`` only applies verdicts already counted, so it is a stage only when it
  keeps a different number of rows (it names a subset of the gates);
- ``vote`` and ``pairs`` change the unit (one row per input, one pair per input);
- ``exported``: the export's record count.

Counts are exact: they are taken from the rows of the node outputs the run recorded
(read by ``_id``, only the columns needed), so a stage counts the rows that passed it
*and* every earlier stage, not a per-gate rate. The report is computed once at the end of
a build and stored in the run record (``reports.funnel``); a record whose artifacts are
gone (``fdbuild gc``) simply has no funnel.

``dropped_everything`` names the node that left an export with 0 rows: the first stage
whose count went to 0, or without a funnel the first node along the chain whose output
has 0 rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fdbuild import columns as C
from fdbuild.checks.keep import compile_keep
from fdbuild.records import Record, node_order, producer

# Evaluation fields that compare with a gold answer: a stage of their own.
GOLD_FIELDS = ("gold_match",)
CHECK_LABELS = {
    "sql_parse": "valid SQL",
    "sqlite_exec": "executes",
    "rules": "passes rules",
    "judge": "judged",
    "dedup": "distinct",
}
ReadColumns = Callable[[str | None, list[str]], list[dict[str, Any]] | None]


def chain_of(record: Record, export: str) -> list[str]:
    """The nodes feeding ``export``, upstream first, ending with the export."""
    nodes = record["nodes"]
    chain = [export]
    current = export
    while True:
        digests = nodes[current].get("input_digests") or []
        if len(digests) != 1:
            break
        upstream = producer(record, digests[0], before=current)
        if upstream is None or upstream in chain:
            break
        chain.append(upstream)
        current = upstream
    return list(reversed(chain))


def funnel_reports(record: Record, read: ReadColumns) -> list[dict[str, Any]]:
    """One funnel per distinct chain (exports reading the same node share one).

    ``read(digest, columns)`` returns those columns of an artifact's rows, or None when
    the artifact is not available."""
    out: list[dict[str, Any]] = []
    by_source: dict[str, dict[str, Any]] = {}
    for name in node_order(record):
        node = record["nodes"][name]
        if node.get("kind") != "export" or "#" in name:
            continue
        chain = chain_of(record, name)
        feed = chain[-2] if len(chain) > 1 else None
        if feed is not None and feed in by_source:
            by_source[feed]["exports"][name] = node["output"]["rows"]
            continue
        funnel = _funnel(record, chain, read)
        if funnel is None:
            continue
        out.append(funnel)
        if feed is not None:
            by_source[feed] = funnel
    return out


def _funnel(record: Record, chain: list[str], read: ReadColumns) -> dict[str, Any] | None:
    nodes = record["nodes"]
    generates = [n for n in chain if nodes[n]["kind"] == "generate"]
    if not generates:
        return None
    start = chain.index(generates[-1])
    steps = chain[start:-1]
    export = chain[-1]
    stages: list[dict[str, Any]] = []
    survivors: set[str] | None = None
    for name in steps:
        node = nodes[name]
        kind = node["kind"]
        recipe = node.get("recipe") or {}
        digest = node.get("output", {}).get("digest")
        if kind == "generate":
            stats = node["stats"]
            per_row = int(recipe.get("n") or 1) * max(1, len(recipe.get("profiles") or {}))
            stages.append(_stage("asked", name, stats["rows_in"] * per_row))
            if stats.get("failed"):
                stages.append(_stage("replied", name, node["output"]["rows"]))
            parse = recipe.get("parse") or "none"
            rows = read(digest, [C.ID, C.PARSE_ERROR] if parse != "none" else [C.ID])
            if rows is None:
                return None
            survivors = {r[C.ID] for r in rows if parse == "none" or r.get(C.PARSE_ERROR) is None}
            if parse != "none":
                stages.append(_stage("parsed", name, len(survivors)))
        elif kind == "gate":
            found = _gate_stages(name, recipe, digest, survivors or set(), read)
            if found is None:
                return None
            gate_stages, survivors = found
            stages.extend(gate_stages)
        elif kind in ("select", "vote", "pairs"):
            rows = read(digest, [C.ID])
            if rows is None:
                return None
            ids = {r[C.ID] for r in rows}
            if kind == "pairs":  # its rows are new (one per input): count them as they are
                survivors = ids
                stages.append(_stage("pairs", name, len(ids)))
                continue
            kept = (survivors or set()) & ids
            if kind == "vote" or len(kept) != len(survivors or ()):
                stages.append(_stage("voted" if kind == "vote" else "selected", name, len(kept)))
            survivors = kept
    stages.append(_stage("exported", export, nodes[export]["output"]["rows"]))
    return {
        "generate": steps[0],
        "exports": {export: nodes[export]["output"]["rows"]},
        "stages": stages,
    }


def _gate_stages(
    name: str,
    recipe: Mapping[str, Any],
    digest: str | None,
    survivors: set[str],
    read: ReadColumns,
) -> tuple[list[dict[str, Any]], set[str]] | None:
    keep: dict[str, Any] = dict(recipe.get("keep") or {})
    prefix = recipe.get("prefix") or ""
    gold = {k: v for k, v in keep.items() if k in GOLD_FIELDS}
    rest = {k: v for k, v in keep.items() if k not in GOLD_FIELDS}
    fields = list(keep)
    rows = read(digest, [C.ID, *(prefix + f for f in fields)])
    if rows is None:
        return None
    label = CHECK_LABELS.get(str(recipe.get("check")), f"passes {name}")
    stages = []
    current = survivors
    parts = [(rest, label)] if rest or not gold else []
    if gold:
        parts.append((gold, "matches gold"))
    for rule, stage_label in parts:
        test = compile_keep(rule)
        current = {
            r[C.ID]
            for r in rows
            if r[C.ID] in current and test({f: r.get(prefix + f) for f in rule})
        }
        stages.append(_stage(stage_label, name, len(current), sorted(rule)))
    return stages, current


def _stage(label: str, node: str, rows: int, keep: list[str] | None = None) -> dict[str, Any]:
    stage: dict[str, Any] = {"stage": label, "node": node, "rows": rows}
    if keep:
        stage["keep"] = keep
    return stage


def dropped_everything(record: Record, export: str) -> str:
    """Why ``export`` has no rows: the node (and stage) where the count went to 0."""
    nodes = record["nodes"]
    for funnel in (record.get("reports") or {}).get("funnel") or []:
        if export not in funnel["exports"]:
            continue
        previous = None
        for stage in funnel["stages"]:
            if stage["rows"] == 0:
                return _blame(nodes, stage, previous)
            previous = stage
    chain = chain_of(record, export)
    for name in chain:
        if nodes[name]["output"].get("rows") == 0 or nodes[name].get("pending"):
            return _node_blame(nodes, name)
    return f"export '{export}'"


def _blame(
    nodes: Mapping[str, Any], stage: Mapping[str, Any], previous: Mapping[str, Any] | None
) -> str:
    node = stage["node"]
    kind = nodes[node]["kind"]
    before = f" of the {previous['rows']} rows that reached it" if previous else ""
    if stage["stage"] == "asked":
        return _node_blame(nodes, node)
    if kind == "gate":
        rule = ", ".join(stage.get("keep") or []) or "its keep rule"
        return f"gate '{node}' passed none{before} (stage '{stage['stage']}', keep: {rule})"
    return f"{kind} '{node}' kept none{before} (stage '{stage['stage']}')"


def _node_blame(nodes: Mapping[str, Any], name: str) -> str:
    node = nodes[name]
    if node.get("pending"):
        return f"{node['kind']} '{name}' waits for upstream rows"
    rows_in = (node.get("stats") or {}).get("rows_in")
    if node["kind"] == "source" or not rows_in:
        return f"{node['kind']} '{name}' has 0 rows"
    return f"{node['kind']} '{name}' turned {rows_in} rows into 0"


def zero_row_warnings(record: Record) -> list[str]:
    """One line per export of the run's own target that wrote 0 rows."""
    out = []
    for name in node_order(record):
        node = record["nodes"][name]
        if node.get("kind") == "export" and "#" not in name and node["output"].get("rows") == 0:
            path = (node.get("recipe") or {}).get("path")
            out.append(
                f"export '{name}' wrote 0 rows to {path}: {dropped_everything(record, name)}"
            )
    return out


def artifact_reader(store: Any) -> ReadColumns:
    """``read`` over an ArtifactStore: only the columns asked for that exist, from an
    artifact that verifies (a check the build already made is not repeated: the store
    remembers each file it verified)."""

    def read(digest: str | None, columns: list[str]) -> list[dict[str, Any]] | None:
        if not digest or not store.exists(digest) or not store.verify(digest).ok:
            return None  # missing or damaged: no figure rather than a wrong one
        import pyarrow.parquet as pq

        path = store.path(digest)
        present = set(pq.read_schema(path).names)
        wanted = [c for c in dict.fromkeys(columns) if c in present]
        return pq.read_table(path, columns=wanted).to_pylist()

    return read
