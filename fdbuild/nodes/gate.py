"""``gate`` nodes: evaluate each row (cached by content), then apply ``keep`` (never cached).

An evaluation key holds the check's name and code version, its params (file params by
content digest, not path), and the values of the row fields it reads. A judge gate adds
the judge teacher's identity; its reply is cached as a generation of its own, so editing
the judge template re-judges while a threshold change re-judges nothing.

Judge requests run on a ``WorkerPool``: anything a worker raises (a failed cache write)
ends the build with that error instead of dying unseen. A judge reply that is not valid
Unicode is a failed row (``invalid_text``, from the teacher pool); one cached by an
older fdbuild is asked again, and a cached evaluation holding such text is dropped and
recorded as failed, so the next build recomputes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fdbuild import columns as C
from fdbuild.checks.judge import JudgeCheck
from fdbuild.checks.keep import compile_keep
from fdbuild.errors import OfflineMiss, TeacherCallError
from fdbuild.execute.context import Failure, NodeStats
from fdbuild.execute.schema import arrow_type, extend_schema
from fdbuild.execute.teachers import UNAVAILABLE
from fdbuild.execute.text_check import INVALID_TEXT, check_record
from fdbuild.execute.workers import Put, WorkerPool
from fdbuild.execute.write_errors import writing
from fdbuild.keys import content_hash, file_digest
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

    def key(self, row: dict[str, Any]) -> str:
        values = {c: row.get(c) for c in self.reads}
        return content_hash({"type": "evaluation", **self.eval_parts, "values": values})

    async def fill_cache(self, input_digest: str) -> int:
        b, stats = self.b, self.stats
        progress = b.progress_for(self.node)
        missing: list[str] = []
        judge = getattr(self.check, "needs_teacher", False)
        progress.total = b.outputs.row_count(input_digest)

        async def produce(put: Put[tuple[dict[str, Any], str]]) -> None:
            for batch in b.outputs.batches(input_digest):
                todo = []
                for row in batch:
                    stats.rows_in += 1
                    key = self.key(row)
                    if b.cache.has(EVAL, key):
                        stats.cached += 1
                        progress.cached += 1
                    elif b.options.dry_run or (b.options.offline and judge):
                        missing.append(row[C.ID])
                    else:
                        todo.append((row, key))
                if judge:
                    for item in todo:
                        await put(item)
                else:
                    self._evaluate_batch(todo)
                b.report(progress)

        concurrency = self._judge_concurrency() if judge else 1
        pool = WorkerPool(self._judge_item, workers=concurrency * 2, queue_size=concurrency * 4)
        await pool.run(produce)
        if b.options.offline and missing:
            raise OfflineMiss(
                f"--offline: judge gate '{self.node.ref}' has {len(missing)} row(s) "
                f"not in the cache: {', '.join(missing[:10])}"
            )
        stats.extra["to_compute"] = len(missing)
        return len(missing)

    def _evaluate_batch(self, todo: list[tuple[dict[str, Any], str]]) -> None:
        with writing(self.b.cache.directory), self.b.cache.batch():
            for row, key in todo:
                try:
                    evaluation = self.check.evaluate(row)
                except Exception as exc:  # a check bug must not lose the build
                    self._fail(row[C.ID], "check_error", f"{type(exc).__name__}: {exc}")
                    continue
                self.b.cache.put(EVAL, key, evaluation)
                self.stats.computed += 1
                self.b.progress_for(self.node).done += 1

    def _judge_check(self) -> JudgeCheck:
        # fill_cache judges only with a check that needs_teacher: only judge does
        assert isinstance(self.check, JudgeCheck)
        return self.check

    def _judge_concurrency(self) -> int:
        return self.node.target.spec.teachers[self._judge_check().params.teacher].concurrency

    async def _judge_item(self, item: tuple[dict[str, Any], str]) -> None:
        await self._judge(*item)

    async def _judge(self, row: dict[str, Any], key: str) -> None:
        check, b = self._judge_check(), self.b
        request = check.request_for(row)
        gen_key = check.generation_key(self.recipe["judge_teacher"], request)
        record = b.cache.get(GEN, gen_key)
        if record is not None and check_record(record) is not None:
            b.cache.delete(GEN, gen_key)  # cached by an older fdbuild: ask again
            record = None
        if record is None:
            try:
                response, attempts, seconds = await b.teachers.call(
                    self.node.target, check.params.teacher, request
                )
            except TeacherCallError as exc:
                self.stats.teacher_calls += getattr(exc, "attempts", 1)
                self._fail(row[C.ID], exc.reason, exc.message)
                return
            self.stats.teacher_calls += attempts
            self.stats.latencies_s.append(seconds)
            self.stats.completion_tokens += response.completion_tokens or 0
            self.stats.prompt_tokens += response.prompt_tokens or 0
            record = response.to_record()
        try:
            evaluation = check.parse_reply(record["text"])
        except ParseFailure as exc:
            self._fail(
                row[C.ID],
                f"judge_{exc.reason}",
                f"unparsable judge reply: {record['text'][:200]!r}",
            )
            return
        teacher = b.teachers.teacher_id(self.node.target, check.params.teacher)
        if not (
            b.watch.put(teacher, GEN, gen_key, record)
            and b.watch.put(teacher, EVAL, key, evaluation)
        ):
            return  # the judge changed meanwhile: the build is ending
        self.stats.computed += 1
        b.progress_for(self.node).done += 1

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

    def assemble(self, input_digest: str, writer: Any) -> None:
        kept = 0
        for batch in self.b.outputs.batches(input_digest):
            for row in batch:
                key = self.key(row)
                evaluation = self.b.cache.get(EVAL, key)
                if evaluation is None:
                    continue
                where = check_record(evaluation)
                if where is not None:  # cached by an older fdbuild: never written out
                    self.b.cache.delete(EVAL, key)
                    self.stats.cached -= 1  # counted as a hit by fill_cache
                    self._fail(
                        row[C.ID],
                        INVALID_TEXT,
                        f"the cached evaluation's {where} is not valid Unicode; dropped from "
                        "the cache, recomputed on the next build",
                    )
                    continue
                out = self.annotate(row, evaluation, key)
                kept += bool(out[C.pass_col(self.node.ref.node)])
                writer.write(out)
        self.stats.extra["kept"] = kept
        self.stats.extra["quality"] = self.quality.report()

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


async def run_gate(
    build: Any, node: GraphNode, recipe: dict[str, Any], input_digest: str, stats: NodeStats
) -> tuple[Any, list[Failure]]:
    runner = GateRunner(build, node, recipe, stats)
    writer_schema = runner.schema(build.outputs.schema(input_digest))
    if runner.check.scope == "table":
        writer = build.outputs.writer(writer_schema)
        runner.assemble_table(input_digest, writer)
        return writer, []
    missing = await runner.fill_cache(input_digest)
    if build.options.dry_run and missing:
        return None, runner.failures
    writer = build.outputs.writer(writer_schema)
    runner.assemble(input_digest, writer)
    return writer, runner.failures
