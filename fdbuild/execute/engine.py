"""Build the graph as a dataflow, reusing what did not change.

Every node runs as its own task from the start; independent branches run at the same
time. Per node: compute its recipe (everything that determines its output), then
``memo key = hash(recipe, input digests)``. A memo hit whose artifact exists is reused
without touching a single row (node-level memo); otherwise the node's kind
(``fdbuild.nodes``) runs, looking up each row in the row cache. A node whose output digest
is unchanged leaves everything downstream a memo hit (early cutoff). Only nodes without
failures are memoised, so failed rows are retried next build.

A node being computed whose kind streams hands its rows, in their final order and in
chunks through bounded buffers (``streams.py``), to the consumers that stream too: a gate
or a judge starts on the first finished generations while the rest are still being
asked. Such a consumer learns its input's digest only at the end; its memo key, and a memo
hit, are decided then (a hit discards what it wrote: the rows were the same). A node that
needs all of its input (vote, pairs, compare, a table-scope gate, an export) waits for
the finished artifact. Every row a node writes, and so every digest, is what the
sequential walk this engine replaced wrote (``tests/func/test_engine_digests.py``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from fdbuild.errors import ArtifactCorrupt
from fdbuild.events import Progress
from fdbuild.execute.context import BuildContext, NodeResult, NodeStats
from fdbuild.execute.explain import explain
from fdbuild.execute.identity import IdentityWatch
from fdbuild.execute.io import Outputs
from fdbuild.execute.signals import sigterm_cancels
from fdbuild.execute.streams import ArtifactInput, Input, Sink, Stream
from fdbuild.execute.teachers import TeacherPool
from fdbuild.execute.workers import run_together
from fdbuild.execute.write_errors import writing
from fdbuild.keys import content_hash
from fdbuild.nodes.base import NodeKind, Outcome, kind_of
from fdbuild.spec.graph import Graph, GraphNode, NodeRef
from fdbuild.store.rowcache import MEMO

_MEMO_EXTRA = ("kept", "quality", "vote", "pairs", "compare", "manifest")


@dataclass
class GraphRun:
    """The outcome of executing a graph (before run records are written)."""

    results: dict[NodeRef, NodeResult] = field(default_factory=dict)
    identities: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    hosts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Per teacher, per host: requests, failures, latency (a pool of hosts)."""
    interrupted: bool = False


class _Slot:
    """A node's place in the running graph: ``started`` is set to its ``Stream`` when
    consumers can read it live, or to its result when it is done; ``finished`` to its
    result."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.started: asyncio.Future[Stream | NodeResult] = loop.create_future()
        self.finished: asyncio.Future[NodeResult] = loop.create_future()

    def finish(self, result: NodeResult) -> None:
        if not self.started.done():
            self.started.set_result(result)
        self.finished.set_result(result)


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
            teacher_workers=ctx.options.teacher_workers,
        )
        self.watch = IdentityWatch(
            self.teachers,
            self.cache,
            interval_s=ctx.options.identity_check_s,
            enabled=not (ctx.options.dry_run or ctx.options.offline),
        )
        self._executor: Any = None
        if getattr(ctx.options, "executor", "local") != "local":
            self.executor  # noqa: B018 - Ray missing or a wrong address: said before any work
        self.stop_error: BaseException | None = None
        self._task: asyncio.Task[Any] | None = None
        self.run = GraphRun()
        self._slots: dict[NodeRef, _Slot] = {}
        self._healing: dict[NodeRef, asyncio.Lock] = {}
        self._progress: dict[NodeRef, Progress] = {}
        self._last_report: dict[str, float] = {}

    @property
    def executor(self) -> Any:
        """Where gate evaluations and parses run (``fdbuild.executors``), made on first
        use: a build whose nodes are all memo hits never imports it."""
        if self._executor is None:
            from fdbuild.executors import make_executor

            self._executor = make_executor(self.ctx.options)
        return self._executor

    # progress ---------------------------------------------------------------------
    def progress_for(self, node: GraphNode) -> Progress:
        p = self._progress.get(node.ref)
        if p is None:
            p = self._progress[node.ref] = Progress(node=str(node.ref), started=time.perf_counter())
        return p

    def report(self, progress: Progress) -> None:
        """At most five updates a second per node (nodes run at the same time)."""
        now = time.perf_counter()
        if now - self._last_report.get(progress.node, 0.0) >= 0.2:
            self._last_report[progress.node] = now
            self.reporter.progress(progress)

    # the dataflow -----------------------------------------------------------------
    async def execute(self) -> GraphRun:
        """Run every node, then confirm the teachers' identities once more.

        ``stop(error)`` (SIGTERM, a teacher that changed) cancels this task at its next
        ``await``; the cancellation reaches every node and worker, and ``error`` is raised
        here."""
        self._task = asyncio.current_task()
        watcher = asyncio.create_task(self.watch.loop(self.stop)) if self.watch.enabled else None
        try:
            with sigterm_cancels(self.stop):
                try:
                    self._slots = {ref: _Slot() for ref in self.graph.order}
                    await run_together(*(self._run_slot(ref) for ref in self.graph.order))
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
            self.run.hosts = _host_report(self.teachers)
            if self._executor is not None:
                for note in getattr(self._executor, "notes", []):
                    self.reporter.message(f"fdbuild: note: {note}")
                await self._executor.aclose()
            await self.teachers.aclose()
        order = {ref: i for i, ref in enumerate(self.graph.order)}
        self.run.results = dict(sorted(self.run.results.items(), key=lambda kv: order[kv[0]]))
        return self.run

    def stop(self, error: BaseException) -> None:
        """End the build with ``error`` (the first one wins)."""
        if self.stop_error is None:
            self.stop_error = error
            if self._task is not None and not self._task.done():
                self._task.cancel()

    async def _run_slot(self, ref: NodeRef) -> None:
        slot = self._slots[ref]
        result = await self.run_node(self.graph.nodes[ref], slot)
        self.run.results[ref] = result
        slot.finish(result)

    async def _inputs(self, node: GraphNode, kind: NodeKind) -> list[Input | NodeResult]:
        """Each input as a live stream (when this node streams and its upstream is being
        computed) or as a finished result."""
        streams = self._streams(node, kind)
        got: list[Input | NodeResult] = []
        for ref in node.inputs:
            state = await (self._slots[ref].started if streams else self._slots[ref].finished)
            got.append(state.input_for(node.ref, ref) if isinstance(state, Stream) else state)
        return got

    def _streams(self, node: GraphNode, kind: NodeKind) -> bool:
        """Whether ``node`` reads its input live: a streaming kind, one input, a build that
        writes (a dry run knows rows only once they are all counted)."""
        return len(node.inputs) == 1 and not self.options.dry_run and kind.streams(node)

    def _readers(self, node: GraphNode, kind: NodeKind) -> list[NodeRef]:
        """The consumers that will read ``node`` live, if it is computed."""
        if self.options.dry_run or not kind.streams(node):
            return []
        return [
            c.ref
            for c in self.graph.nodes.values()
            if node.ref in c.inputs and self._streams(c, kind_of(c.kind))
        ]

    async def run_node(self, node: GraphNode, slot: _Slot | None = None) -> NodeResult:
        kind = kind_of(node.kind)
        stats = NodeStats()
        t0 = time.perf_counter()
        got = await self._inputs(node, kind) if slot is not None else self._finished(node)
        if any(isinstance(g, NodeResult) and g.pending for g in got):
            return NodeResult(
                None,
                0,
                {},
                "",
                [],
                stats,
                pending=True,
                reasons=["waits for upstream rows to be generated"],
            )
        recipe = await kind.recipe(self, node)
        live = [g for g in got if isinstance(g, Input) and g.live]
        if live:
            return await self._compute_live(node, kind, recipe, got, stats, slot, t0)
        finished = [g for g in got if isinstance(g, NodeResult)]
        input_digests = [r.digest for r in finished]
        key = content_hash({"node": recipe, "inputs": input_digests})
        reasons = explain(self.previous.get(node.ref), recipe, input_digests)
        stats.rows_in = sum(r.rows for r in finished)
        memo = self.cache.get(MEMO, key)
        if memo is not None and kind.memo_valid(self, node, memo):
            self.reporter.node_reused(str(node.ref), memo["rows"])
            return self._reused(memo, recipe, key, input_digests, stats, reasons)
        self.reporter.node_started(str(node.ref), node.kind, "; ".join(reasons))
        if node.inputs and kind.reads_inputs(self):
            key, input_digests = await self._intact_inputs(node, recipe, key, input_digests)
        inputs: list[Input] = [
            ArtifactInput(self.outputs, d, ref)
            for d, ref in zip(input_digests, node.inputs, strict=True)
            if d is not None
        ]
        readers = self._readers(node, kind) if slot is not None else []
        stream = Stream(readers, expected_rows=_expected(node, stats)) if readers else None
        sink = Sink(self.outputs, stream, on_open=slot.started.set_result if slot else None)
        with writing(*kind.write_target(self, node, input_digests)):
            outcome = await self._run_kind(kind, node, recipe, inputs, sink, stats)
            result = self._result(outcome, sink, recipe, key, input_digests, stats)
        result.reasons = reasons
        self._memoise(node, kind, result, stats)
        return await self._finished_node(node, result, stats, t0, stream, slot)

    async def _compute_live(
        self,
        node: GraphNode,
        kind: NodeKind,
        recipe: dict[str, Any],
        got: list[Input | NodeResult],
        stats: NodeStats,
        slot: _Slot | None,
        t0: float,
    ) -> NodeResult:
        """A node reading its input while the upstream is still being computed. Its key,
        and so its memo, is known only when the input's digest is: a hit then throws away
        what was written (the same rows) and is reported as reused."""
        (source,) = [g for g in got if isinstance(g, Input)]
        self.reporter.node_started(str(node.ref), node.kind, f"streams from '{source.ref}'")
        readers = self._readers(node, kind)
        stream = Stream(readers, expected_rows=source.expected_rows()) if readers else None
        assert slot is not None
        sink = Sink(self.outputs, stream, on_open=slot.started.set_result)
        with writing(*kind.write_target(self, node, [])):
            outcome = await self._run_kind(kind, node, recipe, [source], sink, stats)
            input_digests = [source.digest]
            key = content_hash({"node": recipe, "inputs": input_digests})
            result = self._result(outcome, sink, recipe, key, input_digests, stats)
        result.reasons = explain(self.previous.get(node.ref), recipe, input_digests)
        memo = self.cache.get(MEMO, key)
        if (
            memo is not None
            and memo.get("digest") == result.digest
            and not result.failures
            and kind.memo_valid(self, node, memo)
        ):
            reused = self._reused(memo, recipe, key, input_digests, NodeStats(), result.reasons)
            reused.stats.wall_s = time.perf_counter() - t0
            self.run.results[node.ref] = reused  # before any consumer can finish
            if stream is not None:
                await stream.close(result.digest)
            self.reporter.node_finished(str(node.ref), reused.stats.summary())
            return reused
        self._memoise(node, kind, result, stats)
        return await self._finished_node(node, result, stats, t0, stream, slot)

    async def _run_kind(
        self,
        kind: NodeKind,
        node: GraphNode,
        recipe: dict[str, Any],
        inputs: list[Input],
        sink: Sink,
        stats: NodeStats,
    ) -> Outcome:
        try:
            outcome = await kind.run(self, node, recipe, inputs, sink, stats)
            await sink.drain(final=True)
            return outcome
        except BaseException:
            if sink.writer is not None:
                sink.writer.abort()  # nothing half-written is ever published
            raise

    def _result(
        self,
        outcome: Outcome,
        sink: Sink,
        recipe: dict[str, Any],
        key: str,
        input_digests: list[str | None],
        stats: NodeStats,
    ) -> NodeResult:
        writer = outcome.writer or sink.writer
        failures = outcome.failures
        if outcome.pending:
            if writer is not None:
                writer.abort()
            return NodeResult(None, 0, recipe, key, input_digests, stats, failures, pending=True)
        if writer is None:  # an export: files outside the store
            return NodeResult(
                outcome.digest, outcome.rows, recipe, key, input_digests, stats, failures
            )
        try:
            digest, rows = writer.finish()
        except BaseException:
            writer.abort()  # a full disk: no temp file left behind
            raise
        self.outputs.keep(writer, digest)
        return NodeResult(digest, rows, recipe, key, input_digests, stats, failures)

    def _reused(
        self,
        memo: dict[str, Any],
        recipe: dict[str, Any],
        key: str,
        input_digests: list[str | None],
        stats: NodeStats,
        reasons: list[str],
    ) -> NodeResult:
        stats.memo_hit = True
        stats.cached = memo.get("units", memo["rows"])
        stats.rows_out = memo["rows"]
        stats.extra.update(memo.get("extra", {}))
        return NodeResult(
            memo["digest"], memo["rows"], recipe, key, input_digests, stats, reasons=reasons
        )

    def _memoise(
        self, node: GraphNode, kind: NodeKind, result: NodeResult, stats: NodeStats
    ) -> None:
        if self.options.dry_run or result.failures or not result.digest or result.pending:
            return
        memo = {
            "digest": result.digest,
            "rows": result.rows,
            "units": stats.cached + stats.computed,
            "extra": {k: v for k, v in stats.extra.items() if k in _MEMO_EXTRA},
            **kind.memo_extra(node),
        }
        self.watch.put(None, MEMO, result.key, memo)  # result.key: see _intact_inputs

    async def _finished_node(
        self,
        node: GraphNode,
        result: NodeResult,
        stats: NodeStats,
        t0: float,
        stream: Stream | None,
        slot: _Slot | None,
    ) -> NodeResult:
        stats.rows_out = result.rows
        stats.wall_s = time.perf_counter() - t0
        if stream is not None:
            if slot is not None:
                self.run.results[node.ref] = result  # before any consumer can finish
            await stream.close(result.digest)
        self.reporter.node_finished(str(node.ref), stats.summary())
        return result

    # damaged inputs ---------------------------------------------------------------
    def _finished(self, node: GraphNode) -> list[Input | NodeResult]:
        return [self.run.results[r] for r in node.inputs]

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
            healed = await self._heal(ref)
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

    async def _heal(self, ref: NodeRef) -> str | None:
        """Build ``ref`` again (no consumer reads it live), once however many consumers
        found its artifact damaged."""
        lock = self._healing.setdefault(ref, asyncio.Lock())
        async with lock:
            known = self.run.results[ref].digest
            if known is not None and self.outputs.verify(known, node=str(ref)):
                return known  # another consumer healed it meanwhile
            self.run.results[ref] = await self.run_node(self.graph.nodes[ref])
            return self.run.results[ref].digest


def _expected(node: GraphNode, stats: NodeStats) -> int | None:
    """Rows a streaming node will write, when its input says (a generate: rows x n x
    profiles); for a consumer's progress only."""
    if node.kind == "generate":
        profiles = len(node.spec.profiles or {}) or 1
        return stats.rows_in * node.spec.n * profiles
    return stats.rows_in or None


def _host_report(teachers: TeacherPool) -> dict[str, list[dict[str, Any]]]:
    report = getattr(teachers, "host_report", None)
    return dict(report()) if callable(report) else {}


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
