"""Walk the graph in dependency order and build each node, reusing what did not change.

Per node: compute its recipe (everything that determines its output), then
``memo key = hash(recipe, input digests)``. A memo hit whose artifact exists is reused
without touching a single row (node-level memo); otherwise the node's module runs,
looking up each row in the row cache. A node whose output digest is unchanged leaves
everything downstream a memo hit (early cutoff). Only nodes without failures are
memoised, so failed rows are retried next build.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fdbuild.checks.judge import JudgeCheck
from fdbuild.errors import ArtifactCorrupt
from fdbuild.events import Progress
from fdbuild.execute.context import BuildContext, Failure, NodeResult, NodeStats
from fdbuild.execute.explain import explain
from fdbuild.execute.identity import IdentityWatch
from fdbuild.execute.io import Outputs
from fdbuild.execute.signals import sigterm_cancels
from fdbuild.execute.teachers import TeacherPool
from fdbuild.execute.write_errors import writing
from fdbuild.keys import content_hash
from fdbuild.nodes import export as export_mod
from fdbuild.nodes import source as source_mod
from fdbuild.nodes.gate import gate_recipe, run_gate
from fdbuild.nodes.generate import generate_recipe, run_generate
from fdbuild.nodes.select import run_select, select_recipe
from fdbuild.spec.graph import Graph, GraphNode, NodeRef
from fdbuild.store.rowcache import MEMO

_MEMO_EXTRA = ("kept", "quality", "vote", "pairs", "compare", "manifest")


@dataclass
class GraphRun:
    """The outcome of executing a graph (before run records are written)."""

    results: dict[NodeRef, NodeResult] = field(default_factory=dict)
    identities: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    interrupted: bool = False


class Build:
    def __init__(
        self,
        graph: Graph,
        ctx: BuildContext,
        previous: dict[NodeRef, dict[str, Any]],
        recorded_teachers: dict[str, dict[str, Any]],
    ) -> None:
        self.graph = graph
        self.ctx = ctx
        self.options = ctx.options
        self.cache = ctx.cache
        self.reporter = ctx.reporter
        self.previous = previous
        self.outputs = Outputs(
            ctx.artifacts, dry_run=ctx.options.dry_run, warn=ctx.reporter.message
        )
        self.cache.warn = ctx.reporter.message  # damaged cache records are named, then recomputed
        self.teachers = TeacherPool(
            offline=ctx.options.offline,
            recorded=recorded_teachers,
            dry_run=ctx.options.dry_run,
            note=ctx.reporter.message,
            retry_base_s=ctx.options.retry_base_s,
            retry_cap_s=ctx.options.retry_cap_s,
        )
        self.watch = IdentityWatch(
            self.teachers,
            self.cache,
            interval_s=ctx.options.identity_check_s,
            enabled=not (ctx.options.dry_run or ctx.options.offline),
        )
        self.stop_error: BaseException | None = None
        self._task: asyncio.Task[Any] | None = None
        self.run = GraphRun()
        self._progress: dict[NodeRef, Progress] = {}
        self._last_report = 0.0

    # progress ---------------------------------------------------------------------
    def progress_for(self, node: GraphNode) -> Progress:
        p = self._progress.get(node.ref)
        if p is None:
            p = self._progress[node.ref] = Progress(node=str(node.ref), started=time.perf_counter())
        return p

    def report(self, progress: Progress) -> None:
        now = time.perf_counter()
        if now - self._last_report >= 0.2:
            self._last_report = now
            self.reporter.progress(progress)

    # the walk ---------------------------------------------------------------------
    async def execute(self) -> GraphRun:
        """Run every node, then confirm the teachers' identities once more.

        ``stop(error)`` (SIGTERM, a teacher that changed) cancels this task at its next
        ``await``; the cancellation reaches every worker, and ``error`` is raised here."""
        self._task = asyncio.current_task()
        watcher = asyncio.create_task(self.watch.loop(self.stop)) if self.watch.enabled else None
        try:
            with sigterm_cancels(self.stop):
                try:
                    for ref in self.graph.order:
                        await self.run_node(self.graph.nodes[ref])
                    await self.watch.check()
                except asyncio.CancelledError:
                    if self.stop_error is not None:
                        raise self.stop_error from None
                    raise
        finally:
            if watcher is not None:
                self.watch.close()  # ends even if the cancellation below is lost
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            await self.teachers.aclose()
        return self.run

    def stop(self, error: BaseException) -> None:
        """End the build with ``error`` (the first one wins)."""
        if self.stop_error is None:
            self.stop_error = error
            if self._task is not None and not self._task.done():
                self._task.cancel()

    async def run_node(self, node: GraphNode) -> None:
        inputs = [self.run.results[r] for r in node.inputs]
        stats = NodeStats()
        t0 = time.perf_counter()
        if any(r.pending for r in inputs):
            self.run.results[node.ref] = NodeResult(
                None,
                0,
                {},
                "",
                [],
                stats,
                pending=True,
                reasons=["waits for upstream rows to be generated"],
            )
            return
        recipe = await self.recipe(node)
        input_digests = [r.digest for r in inputs]
        key = content_hash({"node": recipe, "inputs": input_digests})
        reasons = explain(self.previous.get(node.ref), recipe, input_digests)
        stats.rows_in = sum(r.rows for r in inputs)
        memo = self.cache.get(MEMO, key)
        if memo is not None and self._memo_valid(node, memo):
            stats.memo_hit = True
            stats.cached = memo.get("units", memo["rows"])
            stats.rows_out = memo["rows"]
            stats.extra.update(memo.get("extra", {}))
            self.reporter.node_reused(str(node.ref), memo["rows"])
            result = NodeResult(
                memo["digest"], memo["rows"], recipe, key, input_digests, stats, reasons=reasons
            )
        else:
            self.reporter.node_started(str(node.ref), node.kind, "; ".join(reasons))
            with writing(*self._write_target(node, input_digests)):
                result = await self._compute(node, recipe, key, input_digests, stats)
            result.reasons = reasons
            if (
                not self.options.dry_run
                and not result.failures
                and result.digest
                and not result.pending
            ):
                memo = {
                    "digest": result.digest,
                    "rows": result.rows,
                    "units": stats.cached + stats.computed,
                    "extra": {k: v for k, v in stats.extra.items() if k in _MEMO_EXTRA},
                }
                if node.kind == "export":
                    memo["stamp"] = export_mod.file_stamp(node)
                self.watch.put(None, MEMO, result.key, memo)  # result.key: see _intact_inputs
        stats.rows_out = result.rows
        stats.wall_s = time.perf_counter() - t0
        self.run.results[node.ref] = result
        if not stats.memo_hit:
            self.reporter.node_finished(str(node.ref), stats.summary())

    def _write_target(self, node: GraphNode, input_digests: list[str | None]) -> tuple[Path, Any]:
        """Where a node writes (for a disk-full message) and an estimate of what it needs:
        about the size of its inputs (an output holds their rows, and more columns)."""
        if node.kind == "export":
            return node.target.resolve_path(node.spec.path).parent, None

        def inputs_size() -> int | None:
            paths = [self.ctx.artifacts.path(d) for d in input_digests if d]
            return sum(p.stat().st_size for p in paths if p.exists()) or None

        return self.ctx.artifacts.directory, inputs_size

    def _memo_valid(self, node: GraphNode, memo: dict[str, Any]) -> bool:
        if node.kind == "export":
            return self.options.dry_run or export_mod.export_is_current(node, memo)
        return self.outputs.available(memo["digest"], node=str(node.ref))

    async def _intact_inputs(
        self, node: GraphNode, recipe: dict[str, Any], key: str, input_digests: list[str | None]
    ) -> tuple[str, list[str | None]]:
        """Verify every input's bytes before this node reads its rows. A damaged one is
        quarantined (by ``Outputs.verify``) and the node that made it is built again (from
        the row cache: no teacher call when every row is cached). Returns this node's key
        and input digests, recomputed in the rare case a rebuilt input came out different
        (rows lost from the cache and answered differently)."""
        changed = False
        for i, ref in enumerate(node.inputs):
            digest = input_digests[i]
            if digest is None or self.outputs.verify(digest, node=str(ref)):
                continue
            await self.run_node(self.graph.nodes[ref])
            healed = self.run.results[ref].digest
            if healed is not None and not self.outputs.verify(healed, node=str(ref)):
                raise ArtifactCorrupt(
                    f"artifact {healed} of node '{ref}' is damaged right after being "
                    "rebuilt; check the disk under .fdbuild/objects/",
                    digest=healed,
                    reason="damaged after rebuild",
                )
            if healed != digest:
                input_digests = [*input_digests[:i], healed, *input_digests[i + 1 :]]
                changed = True
        if changed:
            key = content_hash({"node": recipe, "inputs": input_digests})
        return key, input_digests

    async def recipe(self, node: GraphNode) -> dict[str, Any]:
        kind = node.kind
        if kind == "source":
            return source_mod.source_recipe(self.ctx, node)
        if kind == "generate":
            identity = await self.teachers.identity(node.target, node.spec.teacher)
            self.watch.track(node.target, node.spec.teacher)
            self.run.identities[(node.target.name, node.spec.teacher)] = identity.record()
            return generate_recipe(node, identity)
        if kind == "gate":
            judge = None
            if getattr(node.check, "needs_teacher", False):
                assert isinstance(node.check, JudgeCheck)  # the one check that needs_teacher
                teacher = node.check.params.teacher
                identity = await self.teachers.identity(node.target, teacher)
                self.watch.track(node.target, teacher)
                self.run.identities[(node.target.name, teacher)] = identity.record()
                judge = identity.key_parts()
            return gate_recipe(node, judge)
        if kind == "select":
            return select_recipe(node)
        if kind == "export":
            return export_mod.export_recipe(self, node)
        if kind == "vote":
            from fdbuild.nodes.vote import vote_recipe

            return vote_recipe(node)
        if kind == "compare":
            from fdbuild.nodes.compare import compare_recipe

            return compare_recipe(node)
        from fdbuild.nodes.pairs import pairs_recipe

        return pairs_recipe(node)

    async def _compute(
        self,
        node: GraphNode,
        recipe: dict[str, Any],
        key: str,
        input_digests: list[str | None],
        stats: NodeStats,
    ) -> NodeResult:
        kind = node.kind
        failures: list[Failure] = []
        if node.inputs and not (kind == "export" and self.options.dry_run):
            key, input_digests = await self._intact_inputs(node, recipe, key, input_digests)
        if kind == "export":
            if self.options.dry_run:  # would write every input row
                return NodeResult(None, stats.rows_in, recipe, key, input_digests, stats)
            digest, rows = export_mod.run_export(self, node, _input(input_digests))
            stats.computed = rows
            return NodeResult(digest, rows, recipe, key, input_digests, stats)
        if kind == "source":
            table = source_mod.read_table(node, recipe)
            writer = self.outputs.writer(source_mod.table_schema(table))
            stats.rows_in = source_mod.write_rows(node, table, writer)
            stats.computed = stats.rows_in
        elif kind == "generate":
            stats.rows_in = 0
            writer, failures = await run_generate(self, node, recipe, _input(input_digests), stats)
        elif kind == "gate":
            stats.rows_in = 0
            writer, failures = await run_gate(self, node, recipe, _input(input_digests), stats)
        elif kind == "select":
            stats.rows_in = 0
            writer = run_select(self, node, _input(input_digests), stats)
        elif kind == "vote":
            from fdbuild.nodes.vote import run_vote

            stats.rows_in = 0
            writer = run_vote(self, node, _input(input_digests), stats)
        elif kind == "compare":
            from fdbuild.nodes.compare import run_compare

            stats.rows_in = 0
            writer = run_compare(self, node, input_digests, stats)
        else:
            from fdbuild.nodes.pairs import run_pairs

            stats.rows_in = 0
            writer = run_pairs(self, node, _input(input_digests), stats)
        if writer is None:
            return NodeResult(None, 0, recipe, key, input_digests, stats, failures, pending=True)
        digest, rows = writer.finish()
        self.outputs.keep(writer, digest)
        return NodeResult(digest, rows, recipe, key, input_digests, stats, failures)


def _input(input_digests: list[str | None]) -> str:
    """The digest of a node's one input. Only a dry-run export has none (it writes nothing),
    and a node reading one cannot run on it."""
    digest = input_digests[0]
    assert digest is not None, "dry run: the input is an export, which has no output digest"
    return digest


def execute_graph(
    graph: Graph,
    ctx: BuildContext,
    previous: dict[NodeRef, dict[str, Any]],
    recorded_teachers: dict[str, dict[str, Any]],
) -> GraphRun:
    build = Build(graph, ctx, previous, recorded_teachers)
    try:
        return asyncio.run(build.execute())
    except asyncio.CancelledError:  # a stop that came while the build was closing down
        if build.stop_error is not None:
            raise build.stop_error from None
        raise
