"""The one interface every node kind implements, and the registry the engine finds it in.

A kind says what determines its output (``recipe``: hashed with the input digests into
the node's memo key) and computes that output from its inputs (``run``). A kind that
``streams`` reads its one input chunk by chunk (live, while the upstream is still being
computed, or from the finished artifact) and writes its rows in input order to the
``Sink``, so its own consumers can stream from it in turn. The others need all of their
input first and read it by digest.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fdbuild.execute.context import Failure, NodeStats

if TYPE_CHECKING:
    from fdbuild.execute.streams import Input, Sink
    from fdbuild.spec.graph import GraphNode


@dataclass
class Outcome:
    """What ``run`` leaves besides the rows written: failed rows, and whether the output
    is unknown (a dry run missing upstream work). A kind that writes through its own
    writer returns it; one that writes no artifact (an export) gives its digest and rows."""

    failures: list[Failure] = field(default_factory=list)
    pending: bool = False
    writer: Any = None
    digest: str | None = None
    rows: int = 0


class NodeKind:
    """Base of every kind; see the module docstring."""

    name = ""

    def streams(self, node: GraphNode) -> bool:
        return False

    async def recipe(self, build: Any, node: GraphNode) -> dict[str, Any]:
        raise NotImplementedError

    async def run(
        self,
        build: Any,
        node: GraphNode,
        recipe: dict[str, Any],
        inputs: list[Input],
        sink: Sink,
        stats: NodeStats,
    ) -> Outcome:
        raise NotImplementedError

    def memo_valid(self, build: Any, node: GraphNode, memo: dict[str, Any]) -> bool:
        """A memo hit is reused only if its output is still there, intact."""
        return bool(build.outputs.available(memo["digest"], node=str(node.ref)))

    def memo_extra(self, node: GraphNode) -> dict[str, Any]:
        """Anything more the memo records (an export's file stamp)."""
        return {}

    def reads_inputs(self, build: Any) -> bool:
        """Whether ``run`` reads its inputs' rows (so they are verified first)."""
        return True

    def write_target(
        self, build: Any, node: GraphNode, input_digests: list[str | None]
    ) -> tuple[Path, Any]:
        """Where the node writes (for a disk-full message) and an estimate of what it
        needs: about the size of its inputs (an output holds their rows, and more)."""

        def inputs_size() -> int | None:
            paths = [build.ctx.artifacts.path(d) for d in input_digests if d]
            return sum(p.stat().st_size for p in paths if p.exists()) or None

        return build.ctx.artifacts.directory, inputs_size


class WholeInputKind(NodeKind):
    """A kind that needs all of its input before its first output row (vote, pairs,
    compare): ``compute`` reads the finished inputs by digest and returns its writer."""

    def compute(
        self, build: Any, node: GraphNode, digests: list[str | None], stats: NodeStats
    ) -> Any:
        raise NotImplementedError

    async def run(
        self,
        build: Any,
        node: GraphNode,
        recipe: dict[str, Any],
        inputs: list[Input],
        sink: Sink,
        stats: NodeStats,
    ) -> Outcome:
        stats.rows_in = 0
        return Outcome(writer=self.compute(build, node, [i.digest for i in inputs], stats))


async def teacher_identity(build: Any, node: GraphNode, teacher: str) -> Any:
    """The identity of ``teacher`` (resolved once per build), watched from now on and
    recorded on the run."""
    identity = await build.teachers.identity(node.target, teacher)
    build.watch.track(node.target, teacher)
    build.run.identities[(node.target.name, teacher)] = identity.record()
    return identity


def only_digest(inputs: list[Input]) -> str:
    """The digest of a node's one, finished input."""
    digest = inputs[0].digest
    assert digest is not None, "a node that does not stream reads a finished input"
    return digest


# kind name -> "module:Class", imported on first use (a no-op build imports none of the
# modules that compute, and with them no pyarrow)
KINDS = {
    "source": "fdbuild.nodes.source:SourceKind",
    "generate": "fdbuild.nodes.generate:GenerateKind",
    "gate": "fdbuild.nodes.gate:GateKind",
    "select": "fdbuild.nodes.select:SelectKind",
    "vote": "fdbuild.nodes.vote:VoteKind",
    "pairs": "fdbuild.nodes.pairs:PairsKind",
    "compare": "fdbuild.nodes.compare:CompareKind",
    "export": "fdbuild.nodes.export:ExportKind",
}


@cache
def kind_of(name: str) -> NodeKind:
    module, _, cls = KINDS[name].partition(":")
    kind: NodeKind = getattr(importlib.import_module(module), cls)()
    return kind


def teacher_capacity(build: Any, target: Any, teacher: str) -> int:
    """Requests a teacher takes at once: over all of its hosts when it has a pool."""
    capacity = getattr(build.teachers, "capacity", None)
    if callable(capacity):
        return max(1, int(capacity(target, teacher)))
    return max(1, int(target.spec.teachers[teacher].concurrency))
