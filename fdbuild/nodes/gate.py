"""``gate`` nodes: evaluate each row (cached by content), then apply ``keep`` (never cached).

An evaluation key holds the check's name and code version, its params (file params by
content digest, not path), and the values of the row fields it reads. A judge gate adds
the judge teacher's identity; its reply is cached as a generation of its own, so editing
the judge template re-judges while a threshold change re-judges nothing.

Rows stream through: a check that needs no teacher evaluates each chunk's misses as one
batch on the build's executor (inline, a process pool for checks that cost CPU, or a Ray
cluster), then writes the chunk. Judge requests run on ``OrderedWork`` (as many at once as
the judge teacher takes, rows written in input order): anything a worker raises (a
failed cache write) ends the build with that error instead of dying unseen. A judge reply that is not valid
Unicode is a failed row (``invalid_text``, from the teacher pool); one cached by an
older fdbuild is asked again, and a cached evaluation holding such text is dropped and
recorded as failed, so the next build recomputes it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fdbuild import columns as C
from fdbuild.checks.judge import JudgeCheck
from fdbuild.checks.keep import compile_keep
from fdbuild.errors import OfflineMiss, TeacherCallError
from fdbuild.execute.context import Failure, NodeStats
from fdbuild.execute.ordered import OrderedWork
from fdbuild.execute.schema import arrow_type, extend_schema
from fdbuild.execute.streams import Input, Sink
from fdbuild.execute.teachers import UNAVAILABLE
from fdbuild.execute.text_check import INVALID_TEXT, check_record
from fdbuild.execute.write_errors import writing
from fdbuild.keys import content_hash, file_digest
from fdbuild.nodes.base import (
    NodeKind,
    Outcome,
    only_digest,
    teacher_capacity,
    teacher_identity,
)
from fdbuild.parsers.base import ParseFailure
from fdbuild.plugins import keyed_version
from fdbuild.quality import QualityAccumulator
from fdbuild.spec.graph import GraphNode
from fdbuild.store.rowcache import EVAL, GEN

if TYPE_CHECKING:
    import pyarrow as pa


def gate_recipe(node: GraphNode, judge_identity: dict[str, Any] | None) -> dict[str, Any]:
    check = node.check
    assert check is not None
    files = {name: file_digest(path) for name, path in check.file_deps().items()}
    params = check.params.model_dump(mode="json")
    for name in files:
        params.pop(name, None)
    return {
        "kind": "gate",
        "check": check.name,
        "check_version": keyed_version(check),
        "params": params,
        "files": files,
        "judge_teacher": judge_identity,
        "keep": node.spec.keep,
        "prefix": node.spec.prefix,
    }


def _eval_parts(recipe: dict[str, Any]) -> dict[str, Any]:
    return {k: recipe[k] for k in ("check", "check_version", "params", "files", "judge_teacher")}


class GateRunner:
    def __init__(
        self, build: Any, node: GraphNode, recipe: dict[str, Any], stats: NodeStats
    ) -> None:
        self.b = build
        self.node = node
        assert node.check is not None  # set by load_graph for every gate node
        self.check = node.check
        self.recipe = recipe
        self.stats = stats
        self.keep = compile_keep(node.spec.keep)
        self.failures: list[Failure] = []
        self.reads = list(self.check.reads())
        self.eval_parts = _eval_parts(recipe)
        self.prefix = node.spec.prefix or ""
        self.quality = QualityAccumulator(self.check.outputs)
        self.kept = 0
        self._asking: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        """Judge requests in flight: another row with the same one waits for its reply."""

    def key(self, row: dict[str, Any]) -> str:
        values = {c: row.get(c) for c in self.reads}
        return content_hash({"type": "evaluation", **self.eval_parts, "values": values})

    # the pass ------------------------------------------------------------------
    async def run(self, source: Input, sink: Sink) -> int:
        """Evaluate every row not in the cache and write every row, in input order.
        Returns how many evaluations are missing (dry run: the output is then unknown)."""
        b = self.b
        progress = b.progress_for(self.node)
        progress.total = source.expected_rows() or 0
        sink.open(self.schema(await source.schema()))
        judge = getattr(self.check, "needs_teacher", False)
        missing = await (
            self._judge_rows(source, sink) if judge else self._check_rows(source, sink)
        )
        if b.options.offline and missing:
            raise OfflineMiss(
                f"--offline: judge gate '{self.node.ref}' has {len(missing)} row(s) "
                f"not in the cache: {', '.join(missing[:10])}"
            )
        self.stats.extra["to_compute"] = len(missing)
        self.stats.extra["kept"] = self.kept
        self.stats.extra["quality"] = self.quality.report()
        return len(missing)

    def _lookup(self, row: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        key = self.key(row)
        evaluation = self.b.cache.get(EVAL, key)
        if evaluation is not None:
            self.stats.cached += 1
            self.b.progress_for(self.node).cached += 1
        return key, evaluation

    async def _check_rows(self, source: Input, sink: Sink) -> list[str]:
        """A check that needs no teacher, chunk by chunk: the misses of a chunk go to the
        executor as one batch (a process pool or a Ray cluster for a check that costs
        CPU), then the chunk's rows are written."""
        b, missing = self.b, []
        async for batch in source.chunks():
            looked = [(row, *self._lookup(row)) for row in batch]
            self.stats.rows_in += len(batch)
            todo = [i for i, (_, _, ev) in enumerate(looked) if ev is None]
            if b.options.dry_run:
                missing += [looked[i][0][C.ID] for i in todo]
            elif todo:
                found = await self._evaluate([looked[i] for i in todo])
                for i, evaluation in zip(todo, found, strict=True):
                    looked[i] = (looked[i][0], looked[i][1], evaluation)
            for row, key, evaluation in looked:
                self._write(sink, row, key, evaluation)
            await sink.drain(final=True)
            b.report(b.progress_for(self.node))
        return missing

    async def _evaluate(
        self, todo: list[tuple[dict[str, Any], str, Any]]
    ) -> list[dict[str, Any] | None]:
        outcomes = await self.b.executor.evaluate(self.check, [row for row, _, _ in todo])
        found: list[dict[str, Any] | None] = []
        progress = self.b.progress_for(self.node)
        with writing(self.b.cache.directory), self.b.cache.batch():
            for (row, key, _), (status, value) in zip(todo, outcomes, strict=True):
                if status != "ok":  # a check bug must not lose the build
                    self._fail(row[C.ID], "check_error", str(value))
                    found.append(None)
                    continue
                assert isinstance(value, dict)
                self.b.cache.put(EVAL, key, value)
                self.stats.computed += 1
                progress.done += 1
                found.append(value)
        return found

    async def _judge_rows(self, source: Input, sink: Sink) -> list[str]:
        b, missing = self.b, []
        asks = not (b.options.dry_run or b.options.offline)

        async def produce(submit: Any, ready: Any) -> None:
            async for batch in source.chunks():
                for row in batch:
                    self.stats.rows_in += 1
                    key, evaluation = self._lookup(row)
                    if evaluation is not None:
                        await ready((row, key, evaluation))
                    elif asks:
                        await submit((row, key))
                    else:
                        missing.append(row[C.ID])
                b.report(b.progress_for(self.node))

        async def consume(item: tuple[dict[str, Any], str, dict[str, Any] | None]) -> None:
            self._write(sink, *item)
            await sink.drain()

        async def idle() -> None:  # the next judgement is not in: pass on what is, when due
            await sink.idle()

        # twice what the judge takes: a worker always waits for the next free slot
        workers = 2 * teacher_capacity(b, self.node.target, self._judge_check().params.teacher)
        work = OrderedWork(self._judge_item, workers=workers, window=max(4 * workers, 512))
        await work.run(produce, consume, idle)
        return missing

    def _write(
        self, sink: Sink, row: dict[str, Any], key: str, evaluation: dict[str, Any] | None
    ) -> None:
        if evaluation is None:
            return
        where = check_record(evaluation)
        if where is not None:  # cached by an older fdbuild: never written out
            self.b.cache.delete(EVAL, key)
            self.stats.cached -= 1  # counted as a hit by the lookup
            self._fail(
                row[C.ID],
                INVALID_TEXT,
                f"the cached evaluation's {where} is not valid Unicode; dropped from "
                "the cache, recomputed on the next build",
            )
            return
        out = self.annotate(row, evaluation, key)
        self.kept += bool(out[C.pass_col(self.node.ref.node)])
        sink.write(out)

    def _judge_check(self) -> JudgeCheck:
        # only a check that needs_teacher is judged: only judge does
        assert isinstance(self.check, JudgeCheck)
        return self.check

    async def _judge_item(
        self, item: tuple[dict[str, Any], str]
    ) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
        row, key = item
        return row, key, await self._judge(row, key)

    async def _judge(self, row: dict[str, Any], key: str) -> dict[str, Any] | None:
        """One judgement: asked (or its reply read from the cache), parsed, cached and
        returned (None: it failed, and the failure is recorded)."""
        check, b = self._judge_check(), self.b
        request = check.request_for(row)
        gen_key = check.generation_key(self.recipe["judge_teacher"], request)
        record = b.cache.get(GEN, gen_key)
        if record is not None and check_record(record) is not None:
            b.cache.delete(GEN, gen_key)  # cached by an older fdbuild: ask again
            record = None
        while record is None and gen_key in self._asking:
            # the same judge request for another row, in flight: one call for both (if it
            # failed, this row asks itself, and records its own failure)
            record = await asyncio.shield(self._asking[gen_key])
        if record is None:
            future: asyncio.Future[dict[str, Any] | None] = (
                asyncio.get_running_loop().create_future()
            )
            self._asking[gen_key] = future
            try:
                record = await self._ask_judge(row, request)
            finally:
                self._asking.pop(gen_key, None)
                if not future.done():
                    future.set_result(record)
            if record is None:
                return None
        try:
            evaluation = check.parse_reply(record["text"])
        except ParseFailure as exc:
            self._fail(
                row[C.ID],
                f"judge_{exc.reason}",
                f"unparsable judge reply: {record['text'][:200]!r}",
            )
            return None
        teacher = b.teachers.teacher_id(self.node.target, check.params.teacher)
        if not (
            b.watch.put(teacher, GEN, gen_key, record)
            and b.watch.put(teacher, EVAL, key, evaluation)
        ):
            return None  # the judge changed meanwhile: the build is ending
        self.stats.computed += 1
        b.progress_for(self.node).done += 1
        return evaluation

    async def _ask_judge(self, row: dict[str, Any], request: Any) -> dict[str, Any] | None:
        """The judge teacher's reply, as a record (None: the call failed, recorded)."""
        check = self._judge_check()
        try:
            response, attempts, seconds = await self.b.teachers.call(
                self.node.target, check.params.teacher, request
            )
        except TeacherCallError as exc:
            self.stats.teacher_calls += getattr(exc, "attempts", 1)
            self._fail(row[C.ID], exc.reason, exc.message)
            return None
        self.stats.teacher_calls += attempts
        self.stats.latencies_s.append(seconds)
        self.stats.completion_tokens += response.completion_tokens or 0
        self.stats.prompt_tokens += response.prompt_tokens or 0
        return response.to_record()

    def _fail(self, row_id: str, reason: str, detail: str) -> None:
        self.stats.failed += 1
        self.b.progress_for(self.node).failed += 1
        self.failures.append(Failure(str(self.node.ref), row_id, reason, detail))
        if reason != UNAVAILABLE:  # the pool said it once for the whole teacher
            self.b.reporter.row_failed(str(self.node.ref), row_id, f"{reason}: {detail}")

    def schema(self, input_schema: pa.Schema) -> pa.Schema:
        import pyarrow as pa

        added = {self.prefix + k: arrow_type(t) for k, t in self.check.outputs.items()}
        added[C.pass_col(self.node.ref.node)] = pa.bool_()
        if self.check.scope == "row":
            added[C.key_col(self.node.ref.node)] = pa.string()
        return extend_schema(input_schema, added)

    def annotate(
        self, row: dict[str, Any], evaluation: dict[str, Any], key: str | None
    ) -> dict[str, Any]:
        out = dict(row)
        for name in self.check.outputs:
            out[self.prefix + name] = evaluation.get(name)
        passed = self.keep(evaluation)
        self.quality.add(evaluation, passed)
        out[C.pass_col(self.node.ref.node)] = passed
        if key is not None:
            out[C.key_col(self.node.ref.node)] = key
        return out

    def assemble_table(self, input_digest: str, writer: Any) -> None:
        rows = list(self.b.outputs.rows(input_digest))
        self.stats.rows_in = len(rows)
        evaluations = self.check.evaluate_table(rows)
        self.stats.computed = len(rows)
        kept = 0
        for row, evaluation in zip(rows, evaluations, strict=True):
            out = self.annotate(row, evaluation, None)
            kept += bool(out[C.pass_col(self.node.ref.node)])
            writer.write(out)
        self.stats.extra["kept"] = kept
        self.stats.extra["quality"] = self.quality.report()


class GateKind(NodeKind):
    name = "gate"

    def streams(self, node: GraphNode) -> bool:
        assert node.check is not None
        return node.check.scope == "row"

    async def recipe(self, build: Any, node: GraphNode) -> dict[str, Any]:
        judge = None
        if getattr(node.check, "needs_teacher", False):
            assert isinstance(node.check, JudgeCheck)  # the one check that needs_teacher
            identity = await teacher_identity(build, node, node.check.params.teacher)
            judge = identity.key_parts()
        return gate_recipe(node, judge)

    async def run(
        self,
        build: Any,
        node: GraphNode,
        recipe: dict[str, Any],
        inputs: list[Input],
        sink: Sink,
        stats: NodeStats,
    ) -> Outcome:
        runner = GateRunner(build, node, recipe, stats)
        stats.rows_in = 0
        if runner.check.scope == "table":
            digest = only_digest(inputs)
            writer = sink.open(runner.schema(build.outputs.schema(digest)))
            runner.assemble_table(digest, writer)
            return Outcome()
        missing = await runner.run(inputs[0], sink)
        return Outcome(runner.failures, pending=bool(build.options.dry_run and missing))
