"""``select`` nodes: drop the rows a gate did not pass (all gates upstream, or those named)."""

from __future__ import annotations

from typing import Any

from fdbuild import columns as C
from fdbuild.execute.context import NodeStats
from fdbuild.spec.graph import GraphNode


def select_recipe(node: GraphNode) -> dict[str, Any]:
    return {"kind": "select", "gates": node.spec.gates}


def run_select(build: Any, node: GraphNode, input_digest: str, stats: NodeStats) -> Any:
    schema = build.outputs.schema(input_digest)
    names = node.spec.gates
    gate_cols = [C.pass_col(g) for g in names] if names else C.pass_columns(schema.names)
    writer = build.outputs.writer(schema)
    for batch in build.outputs.batches(input_digest):
        for row in batch:
            stats.rows_in += 1
            if all(row.get(c) is True for c in gate_cols):
                writer.write(row)
    return writer
