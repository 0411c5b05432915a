"""``select`` nodes: drop the rows a gate did not pass (all gates upstream, or those named).
Row by row, so it streams: a select after a gate passes rows on as the gate judges them."""

from __future__ import annotations

from typing import Any

from fdbuild import columns as C
from fdbuild.execute.context import NodeStats
from fdbuild.execute.streams import Input, Sink
from fdbuild.nodes.base import NodeKind, Outcome
from fdbuild.spec.graph import GraphNode


def select_recipe(node: GraphNode) -> dict[str, Any]:
    return {"kind": "select", "gates": node.spec.gates}


class SelectKind(NodeKind):
    name = "select"

    def streams(self, node: GraphNode) -> bool:
        return True

    async def recipe(self, build: Any, node: GraphNode) -> dict[str, Any]:
        return select_recipe(node)

    async def run(
        self,
        build: Any,
        node: GraphNode,
        recipe: dict[str, Any],
        inputs: list[Input],
        sink: Sink,
        stats: NodeStats,
    ) -> Outcome:
        (source,) = inputs
        schema = await source.schema()
        names = node.spec.gates
        gate_cols = [C.pass_col(g) for g in names] if names else C.pass_columns(schema.names)
        sink.open(schema)
        stats.rows_in = 0
        async for batch in source.chunks():
            for row in batch:
                stats.rows_in += 1
                if all(row.get(c) is True for c in gate_cols):
                    sink.write(row)
            await sink.drain(final=True)
        return Outcome()
